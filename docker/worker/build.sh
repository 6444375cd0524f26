#!/usr/bin/env bash
# Builds artel's worker image locally (there is no registry to pull from): a Debian bookworm
# minbase root filesystem with python3 and git, made by debootstrap from the machine's own
# Debian mirror, imported with `docker import`. Idempotent: an image whose recipe label
# matches this script's recipe is kept; the root filesystem tarball is cached, so a rebuild
# after `docker rmi` takes seconds.
#
#   bash docker/worker/build.sh [IMAGE]      # default artel-worker:latest
set -euo pipefail
IMAGE=${1:-${ARTEL_WORKER_IMAGE:-artel-worker:latest}}
CACHE=${ARTEL_WORKER_CACHE:-/var/cache/artel/worker-rootfs}
PACKAGES=python3,git,ca-certificates
RECIPE="bookworm-minbase+${PACKAGES}+v1"

if [ "$(docker image inspect -f '{{ index .Config.Labels "artel.recipe" }}' "$IMAGE" 2>/dev/null || true)" = "$RECIPE" ]; then
  echo "worker image $IMAGE: up to date ($RECIPE)"
  exit 0
fi
command -v debootstrap >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"
TARBALL="$CACHE/${RECIPE//[^A-Za-z0-9.+-]/_}.tar"
if [ ! -s "$TARBALL" ]; then
  ROOT=$(mktemp -d /tmp/artel-worker-root-XXXXXX)
  trap 'rm -rf "$ROOT"' EXIT
  echo "worker image: debootstrap from $MIRROR (about a minute)"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" >/dev/null
  # The workers' user and their workspace mount point; nothing else is writable at run time.
  chroot "$ROOT" useradd --uid 64000 --user-group --no-create-home --home-dir /workspace worker
  mkdir -p "$ROOT/workspace"
  rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
  tar -C "$ROOT" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi
docker import \
  --change "LABEL artel.recipe=$RECIPE" \
  --change "LABEL managed-by=artel" \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/workspace LANG=C.UTF-8' \
  --change 'USER 64000:64000' \
  --change 'WORKDIR /workspace' \
  --change 'CMD ["sleep", "infinity"]' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "worker image $IMAGE: built ($RECIPE)"
