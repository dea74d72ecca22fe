#!/usr/bin/env bash
# A container engine for the stack test on a Debian machine without a Docker engine: podman (from
# Debian, run as root) and podman-compose (from PyPI, in a tool environment of its own), plus what
# prepare.sh needs. Installs only what is missing; safe to run again.
#
#   docker/standins/podman-setup.sh          (as root)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PODMAN_COMPOSE_VERSION=${PODMAN_COMPOSE_VERSION:-1.6.0}

# runc: crun refuses this kind of machine's hybrid cgroup layout. netavark and aardvark-dns: the
# per-project network whose DNS Prometheus uses to find every processor. catatonit: `init: true`.
# debootstrap: the root file system of the stand-in images.
packages=(podman runc netavark aardvark-dns iptables catatonit debootstrap)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "podman-setup: installing ${missing[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Fixes this kind of machine needs (a sandbox without systemd that may not raise rlimits): fixed
# ulimits (crun/runc: setrlimit not permitted), runc, cgroupfs, events in a file, netavark.
conf=/etc/containers/containers.conf.d/50-sqs-metrics-exporter.conf
mkdir -p "$(dirname "$conf")"
cat >"$conf" <<'CONF'
# Written by sqs-metrics-exporter's docker/standins/podman-setup.sh
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
CONF

if ! command -v podman-compose >/dev/null; then
  echo "podman-setup: installing podman-compose $PODMAN_COMPOSE_VERSION" >&2
  UV_TOOL_BIN_DIR=/usr/local/bin uv tool install --quiet "podman-compose==$PODMAN_COMPOSE_VERSION"
fi
podman --version
podman-compose --version | head -1
