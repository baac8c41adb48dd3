#!/usr/bin/env bash
# Everything a fresh machine of ours lacks, installed once; each step is skipped when already done.
#   Debian packages (mosquitto; the real node's Docker engine, containerd, runc, CNI plugins, iptables,
#   ipset, socat; mmdebstrap for base images; pkg-config for InfluxDB's Flux engine), uv, the project's
#   virtualenv (from uv.lock), the tools built from source (Rust's cargo from rustup for that engine).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
step() { printf '\n== %s\n' "$*" >&2; }

DEBIAN_PACKAGES=(mosquitto mosquitto-clients docker.io containerd runc containernetworking-plugins
  iptables ipset conntrack socat mmdebstrap gcc libc6-dev pkg-config busybox-static)
missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # No init system runs here: the package's attempt to start dockerd fails harmlessly; localdev starts
  # its own daemons per instance.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  step "installing uv $UV_VERSION"
  python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi

step "syncing the Python environment from uv.lock"
uv sync --frozen --quiet

step "preparing checkov 3.3.30 in its own tool environment (its pins clash with pulumi's)"
uv tool run --quiet --from checkov==3.3.30 checkov --version >/dev/null

step "building the local infrastructure tools (cached by version)"
tools/build.sh
