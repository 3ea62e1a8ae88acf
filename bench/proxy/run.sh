#!/usr/bin/env bash
# svcnet-proxy next to upstream kube-proxy in nftables mode on the same Services (docs/benchmarks.md,
# "Proxy"): a local cluster with two nodes (its own state dir and ports), then `svcnet-bench-proxy
# measure`: for each size the Services and EndpointSlices are created, and each proxy in turn starts
# alone in its node's namespace (kube-proxy on node-1, svcnet-proxy on node-2), does its first full
# sync and applies one-endpoint changes; then the section, also written into docs/benchmarks.md.
#
# Usage: bash bench/proxy/run.sh        (about 15 minutes on 2 cores once built, most of it creating
#        30,000 Services and their slices; the first run also builds kube-proxy, a few minutes)
# Env:   SIZES (1000,10000,30000), ENDPOINTS (10), CHANGES (20), PROXIES (kube-proxy,svcnet-proxy),
#        BENCH_OUT (raw results; default a temp dir), BENCH_STATE_DIR (/tmp/svcnet-bench-proxy-state),
#        API_PORT (27543), ETCD_PORT (23479), WRITE_DOC (1), BUILD (1); CARGO_TARGET_DIR is honoured.
# Everything runs in the cluster's own namespaces; the cluster is taken down by its inventory on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
  export CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR"
fi
target=${CARGO_TARGET_DIR:-$root/target}
sizes=${SIZES:-1000,10000,30000}
endpoints=${ENDPOINTS:-10}
changes=${CHANGES:-20}
state=${BENCH_STATE_DIR:-/tmp/svcnet-bench-proxy-state}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
export SVCNET_STATE_DIR="$state"

if [ "${BUILD:-1}" = 1 ]; then
  echo "== building (release): svcnet-cluster, svcnet-node-agent, svcnet-proxy, the benchmark" >&2
  cargo build --release -p svcnet-e2e -p svcnet-proxy -p svcnet-bench-proxy --bins >&2
fi
hyperkube="$(bash e2e/hyperkube/build.sh)"
kube_proxy="$(BUILD_PACKAGE=k8s.io/kubernetes/cmd/kube-proxy bash e2e/hyperkube/build.sh)"
cluster="$target/release/svcnet-cluster"
bench="$target/release/svcnet-bench-proxy"

down() { "$cluster" --state-dir "$state" down >&2 || true; }
trap down EXIT
echo "== cluster up (2 nodes, state $state)" >&2
"$cluster" --state-dir "$state" up --hyperkube "$hyperkube" --nodes 2 \
  --api-port "${API_PORT:-27543}" --etcd-port "${ETCD_PORT:-23479}" >&2

"$bench" measure --state-dir "$state" --sizes "$sizes" --endpoints "$endpoints" --changes "$changes" \
  --proxies "${PROXIES:-kube-proxy,svcnet-proxy}" \
  --svcnet-proxy "$target/release/svcnet-proxy" --kube-proxy "$kube_proxy" --out "$out/results.json"
mkdir -p "$out/logs"
cp "$state"/logs/*.log "$out/logs/" 2>/dev/null || true

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
header="$(date -u +%Y-%m-%d) · nproc $(nproc) · ${cpu:-unknown CPU} · ${mem} RAM · $(uname -sr) · $(nft --version) · commit $commit · Kubernetes v1.36.3"
doc_flag=()
if [ "${WRITE_DOC:-1}" = 1 ]; then doc_flag=(--doc "$root/docs/benchmarks.md"); fi
"$bench" report --results "$out/results.json" --header "$header" "${doc_flag[@]}"
echo "raw results and logs: $out" >&2
