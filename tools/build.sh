#!/usr/bin/env bash
# Builds the local infrastructure tools from source (Go module proxy) into a cache outside the repo,
# one folder per tool and version. A tool whose folder is complete is never rebuilt.
#
#   tools/build.sh            build whatever is missing
#   tools/build.sh etcd kwok  build only these
#   tools/build.sh --dirs     print where each tool lives
#
# Each tool ends up in $DTPOC_TOOLS_CACHE/<tool>-<version>/bin; tools/env.sh puts them on PATH.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
wrappers="$repo/tools/go"
# shellcheck source=versions.env
source "$repo/tools/versions.env"
cache="${DTPOC_TOOLS_CACHE:-$HOME/.cache/dtpoc/tools}"
mkdir -p "$cache"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

log() { printf '[tools %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Where a wrapper holds code of our own, its cache key includes a hash of that source.
source_key() {
  cat "$wrappers/$1/"*.go "$wrappers/$1/go.mod" | sha256sum | cut -c1-12
}

tool_dir() {
  case "$1" in
    etcd) echo "$cache/etcd-$ETCD_VERSION" ;;
    kubernetes) echo "$cache/kubernetes-$KUBERNETES_VERSION" ;;
    kwok) echo "$cache/kwok-$KWOK_VERSION" ;;
    ferretdb) echo "$cache/ferretdb-$FERRETDB_VERSION-$(source_key ferretdb)" ;;
    pulumi) echo "$cache/pulumi-$PULUMI_VERSION" ;;
    pulumi-language-python) echo "$cache/pulumi-language-python-$PULUMI_VERSION-$(source_key pulumi-language-python)" ;;
    pulumi-resource-kubernetes) echo "$cache/pulumi-resource-kubernetes-$PULUMI_KUBERNETES_VERSION" ;;
    kubenode) echo "$cache/kubenode-$KUBERNETES_VERSION" ;;
    pause) echo "$cache/pause-$KUBERNETES_VERSION" ;;
    coredns) echo "$cache/coredns-$COREDNS_VERSION" ;;
    kube-router) echo "$cache/kube-router-$KUBE_ROUTER_VERSION" ;;
    pulumi-dynamic-python) echo "$cache/pulumi-dynamic-python-$PULUMI_VERSION" ;;
    influxdb) echo "$cache/influxdb-$INFLUXDB_VERSION" ;;
    dashboard-check) echo "$cache/dashboard-check-$(source_key dashboard-check)" ;;
    telegraf) echo "$cache/telegraf-$TELEGRAF_VERSION-$(echo "$TELEGRAF_PLUGINS" | sha256sum | cut -c1-8)" ;;
    *) echo "unknown tool: $1" >&2; return 1 ;;
  esac
}

build_etcd() {
  cd "$wrappers/etcd"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/etcd" go.etcd.io/etcd/server/v3
}

build_kubernetes() {
  cd "$wrappers/kubernetes"
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$(k8s_ldflags)" \
    -o "$1/bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

k8s_ldflags() {
  local minor=${KUBERNETES_VERSION#v*.}
  minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  echo "-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
}

# The real node's kubelet and kube-proxy, from the same wrapper module as the control plane.
build_kubenode() {
  cd "$wrappers/kubernetes"
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$(k8s_ldflags)" \
    -o "$1/bin/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

# The pod sandbox image: pause.c from the kubernetes module, static, as a FROM-scratch OCI image tarball
# that containerd imports (its sandbox_image; nothing can be pulled here).
build_pause() {
  cd "$wrappers/kubernetes"
  local src
  src=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
  gcc -Os -Wall -Werror -static -DVERSION="dtpoc-$KUBERNETES_VERSION" -o "$1/bin/pause" "$src"
  strip "$1/bin/pause"
  (cd "$repo" && python3 -m localdev.oci --binary "$1/bin/pause" --entrypoint /pause \
    --ref "localhost/dtpoc-pause:$KUBERNETES_VERSION" --out "$1/pause.oci.tar")
}

build_coredns() {
  cd "$wrappers/coredns"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/coredns" github.com/coredns/coredns
}

# NetworkPolicy enforcement on the local real node only (kube-network-policies needs nftables' queue
# statement, which this kernel lacks). Never deployed by the program: see localdev/node.py.
build_kube-router() {
  cd "$wrappers/kube-router"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
}

# Telegraf with the plugins telegraf.conf uses (components/telegraf.py) and nothing else: Telegraf's own
# custom-build tags (docs/CUSTOMIZATION.md). Seconds instead of minutes, a fifth of the full binary.
TELEGRAF_PLUGINS="inputs.mqtt_consumer,outputs.influxdb_v2,outputs.file,outputs.health,parsers.json_v2,serializers.influx"
build_telegraf() {
  cd "$wrappers/telegraf"
  go build -trimpath -tags "custom,$TELEGRAF_PLUGINS" -ldflags "-s -w" -o "$1/bin/telegraf" \
    github.com/influxdata/telegraf/cmd/telegraf
}

# InfluxDB 2: influxd needs the Flux engine's libflux (Rust, a Cargo workspace inside the flux module), linked
# through cgo and pkg-config. Built here from the module proxy and crates.io: the flux module is copied out
# of the read-only module cache (libflux's build script reads the module's stdlib), built with cargo (the
# installed stable toolchain instead of flux's pinned one; lints capped, as flux denies warnings), and a
# flux.pc names the static library. No UI assets (upstream downloads them; the API does not need them).
build_influxdb() {
  local work="$1/.build"
  PATH="$HOME/.cargo/bin:$PATH"  # rustup's cargo (a CI shell may not have it on PATH)
  mkdir -p "$work"
  local server flux_version flux cli_version cli
  server=$(module_dir "github.com/influxdata/influxdb/v2@$INFLUXDB_VERSION")
  flux_version=$(cd "$server" && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' github.com/influxdata/flux)
  cli_version=$(cd "$server" && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' github.com/influxdata/influx-cli/v2)
  flux=$(module_dir "github.com/influxdata/flux@$flux_version")
  cp -r "$flux" "$work/flux" && chmod -R u+w "$work/flux"
  (cd "$work/flux/libflux" && RUSTUP_TOOLCHAIN=stable RUSTFLAGS="--cap-lints warn" \
    CARGO_TARGET_DIR="$work/target" cargo build --release --locked --quiet)
  mkdir -p "$work/prefix/lib/pkgconfig" "$work/prefix/include"
  cp "$work/target/release/libflux.a" "$work/prefix/lib/"  # static only: no libflux.so at run time
  cp -r "$work/flux/libflux/include/." "$work/prefix/include/"
  printf '%s\n' "Name: Flux" "Version: ${flux_version#v}" "Description: the Flux engine" \
    "Libs: -L$work/prefix/lib -lflux -ldl -lpthread -lm" "Cflags: -I$work/prefix/include" \
    > "$work/prefix/lib/pkgconfig/flux.pc"
  (cd "$server" && CGO_ENABLED=1 GOFLAGS="-mod=readonly -buildvcs=false" PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" \
    go build -trimpath -tags sqlite_foreign_keys,sqlite_json \
    -ldflags "-s -w -X main.version=${INFLUXDB_VERSION#v} -X main.commit=$INFLUXDB_VERSION" \
    -o "$1/bin/influxd" ./cmd/influxd)
  cli=$(module_dir "github.com/influxdata/influx-cli/v2@$cli_version")
  (cd "$cli" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath \
    -ldflags "-s -w -X main.version=$cli_version" -o "$1/bin/influx" ./cmd/influx)
  rm -rf "$work"
}

# A module's source folder in the module cache (downloaded through the proxy when missing).
module_dir() {
  go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

# The tests' check of generated Grafana dashboards against the Grafana Foundation SDK's dashboard types.
build_dashboard-check() {
  cd "$wrappers/dashboard-check"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/dashboard-check" .
}

build_kwok() {
  cd "$wrappers/kwok"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
}

build_ferretdb() {
  cd "$wrappers/ferretdb"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/ferretdb" .
}

build_pulumi() {
  cd "$wrappers/pulumi"
  go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$1/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

build_pulumi-language-python() {
  cd "$wrappers/pulumi-language-python"
  go build -trimpath -ldflags "-s -w" -o "$1/bin/pulumi-language-python" .
  # The host runs the program through this script from the SDK module, found beside the host.
  local sdk
  sdk=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$1/bin/"
}

# The plugin that serves Python dynamic resources (the program's image builder): a script in the SDK
# module, beside the language host's; the pip package does not carry it.
build_pulumi-dynamic-python() {
  local sdk
  sdk=$(cd "$1" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$1/bin/"
}

build_pulumi-resource-kubernetes() {
  cd "$wrappers/pulumi-resource-kubernetes"
  local src version=${PULUMI_KUBERNETES_VERSION#v}
  src="$(go env GOMODCACHE)/github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_PROVIDER_MODULE/cmd/pulumi-resource-kubernetes"
  [ -d "$src" ] || go mod download "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_PROVIDER_MODULE"
  # Upstream's generate step: the schema carries the provider's version.
  python3 - "$src/schema.json" schema-embed.json "$version" <<'PY'
import json, sys
source, target, version = sys.argv[1:]
schema = json.load(open(source))
schema["version"] = version
json.dump(schema, open(target, "w"))
PY
  cp "$src/terraform-mapping.json" terraform-mapping-embed.json
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$version" \
    -o "$1/bin/pulumi-resource-kubernetes" .
}

build() {
  local tool=$1 dest
  dest=$(tool_dir "$tool")
  if [ -f "$dest/.complete" ]; then
    log "$tool: cached in $dest"
    return
  fi
  log "$tool: building into $dest"
  rm -rf "$dest.partial"
  mkdir -p "$dest.partial/bin"
  local start=$SECONDS
  ("build_$tool" "$dest.partial")
  echo $((SECONDS - start)) > "$dest.partial/build-seconds"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  touch "$dest/.complete"
  log "$tool: built in $((SECONDS - start)) s, $(du -sh "$dest" | cut -f1)"
}

all=(etcd kwok ferretdb pulumi-language-python pulumi-dynamic-python kubernetes pulumi pulumi-resource-kubernetes
  kubenode pause coredns kube-router telegraf influxdb dashboard-check)
if [ "${1:-}" = "--dirs" ]; then
  # Where each tool lives (name=dir per line), for localdev/tools.py: the cache layout is defined here only.
  for tool in "${all[@]}"; do echo "$tool=$(tool_dir "$tool")"; done
  exit 0
fi
for tool in "${@:-${all[@]}}"; do
  build "$tool"
done
