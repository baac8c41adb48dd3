#!/usr/bin/env bash
# Everything a fresh machine of ours lacks, installed once; each step is skipped when already done.
#   Debian packages (mosquitto), uv, the project's virtualenv (from uv.lock), the tools built from source.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
step() { printf '\n== %s\n' "$*" >&2; }

if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  step "installing Debian packages: mosquitto mosquitto-clients"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
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
