#!/usr/bin/env bash
# Starts the real services artel's tests use — a private PostgreSQL cluster and a Redis server
# on loopback — installing them from Debian when missing. Idempotent: a service that already
# answers is left alone. Source it (`. .ci/services.sh`) to get the exported URLs.
#
#   ARTEL_TEST_DATABASE_URL  postgres://postgres@127.0.0.1:$ARTEL_TEST_PG_PORT/postgres
#   ARTEL_TEST_REDIS_URL     redis://127.0.0.1:$ARTEL_TEST_REDIS_PORT
#   ARTEL_TEST_REDIS_PORT    the port, so tests can restart Redis (redis-cli -p … shutdown)
set -euo pipefail

: "${ARTEL_TEST_PG_PORT:=54329}"
: "${ARTEL_TEST_REDIS_PORT:=63790}"
: "${ARTEL_TEST_SERVICES_DIR:=/tmp/artel-test-services}"
export ARTEL_TEST_PG_PORT ARTEL_TEST_REDIS_PORT ARTEL_TEST_SERVICES_DIR

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  return 1
}

start_postgres() {
  local bin data="$ARTEL_TEST_SERVICES_DIR/pg" sock="$ARTEL_TEST_SERVICES_DIR/pg-sock"
  bin=$(pg_bin) || { apt_install postgresql; bin=$(pg_bin); }
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$ARTEL_TEST_PG_PORT" 2>/dev/null; then
    echo "postgres: already answering on $ARTEL_TEST_PG_PORT"
    return
  fi
  mkdir -p "$ARTEL_TEST_SERVICES_DIR" "$sock"
  chmod 777 "$ARTEL_TEST_SERVICES_DIR" "$sock"
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    chown postgres "$sock"
    as=(runuser -u postgres --)
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"; mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
  fi
  "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$ARTEL_TEST_SERVICES_DIR/pg.log" -w -t 60 \
    -o "-p $ARTEL_TEST_PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
    start >/dev/null
  echo "postgres: started on $ARTEL_TEST_PG_PORT ($data)"
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if redis-cli -p "$ARTEL_TEST_REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    echo "redis: already answering on $ARTEL_TEST_REDIS_PORT"
    return
  fi
  mkdir -p "$ARTEL_TEST_SERVICES_DIR/redis"
  redis-server --daemonize yes --port "$ARTEL_TEST_REDIS_PORT" --bind 127.0.0.1 \
    --dir "$ARTEL_TEST_SERVICES_DIR/redis" --appendonly yes --appendfsync always --save '' \
    --logfile "$ARTEL_TEST_SERVICES_DIR/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$ARTEL_TEST_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  redis-cli -p "$ARTEL_TEST_REDIS_PORT" ping | grep -q PONG
  echo "redis: started on $ARTEL_TEST_REDIS_PORT (AOF on)"
}

# The pipeline's tools: git for project repositories, python3 for the template's services.
ensure_tools() {
  local missing=()
  command -v git >/dev/null || missing+=(git)
  [ -x /usr/bin/python3 ] || command -v python3 >/dev/null || missing+=(python3)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# The OpenAPI validator the control plane's contract test runs on the served document.
ensure_openapi_validator() {
  python3 -c 'import openapi_spec_validator' 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
      'openapi-spec-validator>=0.7' >/dev/null
}

# Headless Chromium and its WebDriver, for the dashboard's browser test.
ensure_browser() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null ||
    apt_install chromium chromium-driver
}

# bubblewrap, the sandbox around local-process worker commands (artel's data dir hidden,
# no network for offline tasks).
ensure_bwrap() {
  command -v bwrap >/dev/null || apt_install bubblewrap
}

# Docker, for the worker image (and the Docker runtime as it arrives): docker.io from Debian,
# dockerd started in the background when no daemon answers, then the worker image built
# (idempotent; its root filesystem is cached in /var/cache/artel).
start_docker() {
  command -v dockerd >/dev/null || apt_install docker.io
  command -v debootstrap >/dev/null || apt_install debootstrap
  if ! docker info >/dev/null 2>&1; then
    nohup dockerd >"$ARTEL_TEST_SERVICES_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || {
      echo "dockerd did not start; see $ARTEL_TEST_SERVICES_DIR/dockerd.log" >&2
      return 1
    }
    echo "docker: started"
  else
    echo "docker: already answering"
  fi
  bash "$(dirname "${BASH_SOURCE[0]}")/../docker/worker/build.sh"
}

ensure_tools
ensure_openapi_validator
ensure_browser
ensure_bwrap
start_postgres
start_redis
mkdir -p "$ARTEL_TEST_SERVICES_DIR"
start_docker
export ARTEL_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$ARTEL_TEST_PG_PORT/postgres"
export ARTEL_TEST_REDIS_URL="redis://127.0.0.1:$ARTEL_TEST_REDIS_PORT"
