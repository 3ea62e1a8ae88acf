#!/usr/bin/env bash
# svcnet-controller next to upstream kube-controller-manager's endpointslice-controller, same workload
# (docs/benchmarks.md, "EndpointSlice controller"): for each controller in turn, a fresh simulated local
# cluster (its own state dir and ports), the controller as an addon, then `svcnet-bench-endpointslice
# measure` (2,000 Services x 10 pods, then readiness flips and scaling); then the table, also written
# into docs/benchmarks.md.
#
# Usage: bash bench/endpointslice/run.sh        (roughly 20-35 minutes on 2 cores at full scale)
# Env:   SERVICES (2000), PODS_PER_SERVICE (10), NODES (3), FLIP_ROUNDS (20), SCALE_ROUNDS (10),
#        SETTLE_SECONDS (120: between the setup and the churn),
#        CONTROLLERS ("svcnet upstream"), BENCH_OUT (raw results; default a temp dir),
#        BENCH_STATE_DIR (/tmp/svcnet-bench-state), API_PORT (26443), ETCD_PORT (22379),
#        UPSTREAM_QPS (200) / UPSTREAM_BURST (400), SVCNET_FLAGS (more svcnet-controller flags), WRITE_DOC (1: update docs/benchmarks.md),
#        CARGO_TARGET_DIR is honoured (release binaries are built there; BUILD=0 uses them as they are).
# Everything talks only to 127.0.0.1; the clusters are taken down by their own inventory.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
  export CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR"
fi
target=${CARGO_TARGET_DIR:-$root/target}
services=${SERVICES:-2000}
pods_per_service=${PODS_PER_SERVICE:-10}
nodes=${NODES:-3}
state=${BENCH_STATE_DIR:-/tmp/svcnet-bench-state}
api_port=${API_PORT:-26443}
etcd_port=${ETCD_PORT:-22379}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
export SVCNET_STATE_DIR="$state"

if [ "${BUILD:-1}" = 1 ]; then
  echo "== building (release): svcnet-cluster, svcnet-node-agent, svcnet-controller, the benchmark" >&2
  cargo build --release -p svcnet-e2e -p svcnet-controller -p svcnet-bench-endpointslice --bins >&2
fi
hyperkube="$(bash e2e/hyperkube/build.sh)"
cluster="$target/release/svcnet-cluster"
bench="$target/release/svcnet-bench-endpointslice"

down() { "$cluster" --state-dir "$state" down >&2 || true; }
trap down EXIT

for controller in ${CONTROLLERS:-svcnet upstream}; do
  echo "== $controller: cluster up ($nodes simulated nodes, state $state, api 127.0.0.1:$api_port)" >&2
  "$cluster" --state-dir "$state" up --hyperkube "$hyperkube" --simulated --nodes "$nodes" \
    --api-port "$api_port" --etcd-port "$etcd_port" >&2
  case "$controller" in
    svcnet)
      manager=svcnet-controller
      "$cluster" --state-dir "$state" addon --name bench-controller -- \
        "$target/release/svcnet-controller" --leader-elect=false \
        --http-addr=127.0.0.1:28080 --identity=bench-controller ${SVCNET_FLAGS:-}
      ;;
    upstream)
      manager=endpointslice-controller.k8s.io
      "$cluster" --state-dir "$state" addon --name bench-controller -- \
        "$hyperkube" kube-controller-manager --kubeconfig="$state/kubeconfig" \
        --controllers=endpointslice-controller --leader-elect=false --secure-port=0 \
        --kube-api-qps="${UPSTREAM_QPS:-200}" --kube-api-burst="${UPSTREAM_BURST:-400}"
      ;;
    *) echo "unknown controller $controller" >&2; exit 2 ;;
  esac
  "$bench" measure --state-dir "$state" --addon bench-controller --controller "$controller" \
    --manager "$manager" --services "$services" --pods-per-service "$pods_per_service" \
    --flip-rounds "${FLIP_ROUNDS:-20}" --scale-rounds "${SCALE_ROUNDS:-10}" \
    --settle-seconds "${SETTLE_SECONDS:-120}" \
    --out "$out/$controller.json"
  if [ "$controller" = svcnet ]; then
    # The controller's own counters, for the record.
    curl -fsS http://127.0.0.1:28080/metrics > "$out/svcnet-metrics.txt" || true
  fi
  cp "$state/logs/bench-controller.log" "$out/$controller-controller.log" 2>/dev/null || true
  # For reading a slow stretch afterwards (GODEBUG=gctrace=1 puts the Go processes' GC in them).
  for log in etcd kube-apiserver; do
    cp "$state/logs/$log.log" "$out/$controller-$log.log" 2>/dev/null || true
  done
  down
done

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
header="$(date -u +%Y-%m-%d) · nproc $(nproc) · ${cpu:-unknown CPU} · ${mem} RAM · $(uname -sr) · rustc $(rustc --version | awk '{ print $2 }') · Kubernetes v1.36.3"
doc_flag=()
if [ "${WRITE_DOC:-1}" = 1 ]; then doc_flag=(--doc "$root/docs/benchmarks.md"); fi
"$bench" report --svcnet "$out/svcnet.json" --upstream "$out/upstream.json" --header "$header" "${doc_flag[@]}"
echo "raw results: $out" >&2
