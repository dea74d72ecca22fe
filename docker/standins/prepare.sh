#!/usr/bin/env bash
# Stand-in base images for the compose stack, for machines that run podman but reach no container
# registry (CI here): every image the Dockerfile and docker-compose.yaml name, and that is not on the
# machine yet, is built from Debian bookworm packages and tagged with that exact name, so that the
# Dockerfile and the compose file run unchanged. Images already present (real or stand-in) are kept.
# Prints, per image, what provides it. See docs/stack.md for what stand-ins cannot show.
#
#   docker/standins/prepare.sh          (as root; needs podman and debootstrap)
#
# DEBIAN_MIRROR overrides the mirror debootstrap uses (default: deb.debian.org).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
label=io.github.sqs-metrics-exporter.standin
debian=localhost/exporter-standin/debian:bookworm
python_base=localhost/exporter-standin/python:bookworm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Where TLS is intercepted, package installs inside builds must trust the machine's CAs.
cp "$here"/Containerfile.* "$here/redis-entrypoint.sh" "$work/"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$work/host-ca.crt"
else
  : >"$work/host-ca.crt"
fi

log() { printf 'stand-ins: %s\n' "$*" >&2; }

build() {  # build <recipe> <tag>... [-- build args]
  local recipe=$1 tags=() args=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do tags+=(-t "$1"); shift; done
  [ $# -gt 0 ] && shift && args=("$@")
  log "building ${tags[*]} from Containerfile.$recipe"
  podman build --quiet --pull=never --network host "${tags[@]}" "${args[@]/#/--build-arg=}" \
    -f "$work/Containerfile.$recipe" "$work" >/dev/null
}

ensure_debian() {
  podman image exists "$debian" && return
  log "debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/rootfs" -c . | podman import --quiet - "$debian" >/dev/null
  rm -rf "$work/rootfs"
}

ensure_python_base() {
  podman image exists "$python_base" && return
  ensure_debian
  build python "$python_base"
}

provided_by() {
  local what
  what=$(podman image inspect --format "{{ index .Labels \"$label\" }}" "$1" 2>/dev/null || true)
  if [ -z "$what" ] || [ "$what" = "<no value>" ]; then
    echo "the real image"
  else
    echo "stand-in: $what"
  fi
}

report=()
while read -r kind image; do
  if podman image exists "$image"; then
    report+=("$image	present, $(provided_by "$image")")
    continue
  fi
  case $kind in
    none)
      report+=("$image	missing, no stand-in (nothing in Debian provides it): left out of the stack test")
      continue ;;
    python)
      ensure_python_base
      podman tag "$python_base" "$image" ;;
    *)
      ensure_debian
      build "$kind" "$image" ;;
  esac
  report+=("$image	built, $(provided_by "$image")")
done < <(cd "$root" && ${PYTHON:-uv run --frozen python} docker/standins/images.py)

printf '%s\n' "Base images of the stack (docker/standins/prepare.sh):"
printf '  %s\n' "${report[@]}" | column -t -s '	'
