#!/usr/bin/env bash
# Service creations through svcnet's allocation webhook, one and two svcnet-controller replicas, next
# to the same creations with no webhook (docs/benchmarks.md, "Allocation webhook"): for each setup in
# turn, a fresh local cluster (its own state dir and ports), svcnet's CRDs, the replicas as addons,
# then `svcnet-bench-webhook measure` (a warm-up, then N NodePort Services from C concurrent clients);
# then the section, also written into docs/benchmarks.md.
#
# Usage: bash bench/webhook/run.sh        (7-16 minutes on 2 cores once built: 3 rounds of 3 setups;
#        a run whose reservations do not settle waits up to 2 minutes for them)
# Env:   SERVICES (2000), CLIENTS (20), WARMUP (50), SETUPS ("none one two"), RUNS (3: rounds of
#        every setup; the doc shows each setup's median run and lists every run),
#        BENCH_OUT (raw results; default a temp dir), BENCH_STATE_DIR (/tmp/svcnet-bench-webhook-state),
#        API_PORT (27443), ETCD_PORT (23379), WEBHOOK_PORT (28443), HTTP_PORTS ("28081 28082"),
#        WRITE_DOC (1: update docs/benchmarks.md), BUILD (1: build the release binaries first;
#        0 uses them as they are); CARGO_TARGET_DIR is honoured.
# Everything talks only to 127.0.0.1; the cluster is taken down by its own inventory on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
  export CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR"
fi
target=${CARGO_TARGET_DIR:-$root/target}
services=${SERVICES:-2000}
clients=${CLIENTS:-20}
warmup=${WARMUP:-50}
state=${BENCH_STATE_DIR:-/tmp/svcnet-bench-webhook-state}
api_port=${API_PORT:-27443}
etcd_port=${ETCD_PORT:-23379}
webhook_port=${WEBHOOK_PORT:-28443}
read -r -a http_ports <<< "${HTTP_PORTS:-28081 28082}"
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
export SVCNET_STATE_DIR="$state"

if [ "${BUILD:-1}" = 1 ]; then
  echo "== building (release): svcnet-cluster, svcnet-node-agent, svcnet-controller, the benchmark" >&2
  cargo build --release -p svcnet-e2e -p svcnet-controller -p svcnet-bench-webhook --bins >&2
fi
hyperkube="$(bash e2e/hyperkube/build.sh)"
cluster="$target/release/svcnet-cluster"
controller="$target/release/svcnet-controller"
bench="$target/release/svcnet-bench-webhook"

# The replicas' ports must be free: another process answering /readyz would fool the benchmark.
for port in "$webhook_port" "${http_ports[@]}"; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    echo "port 127.0.0.1:$port is in use; set WEBHOOK_PORT / HTTP_PORTS" >&2
    exit 1
  fi
done

down() { "$cluster" --state-dir "$state" down >&2 || true; }
trap down EXIT

names=(a b)
results=()
runs=${RUNS:-3}
for ((run = 1; run <= runs; run++)); do
for setup in ${SETUPS:-none one two}; do
  case "$setup" in
    none) replicas=0 ;;
    one) replicas=1 ;;
    two) replicas=2 ;;
    *) echo "unknown setup $setup (none, one, two)" >&2; exit 2 ;;
  esac
  if [ "$replicas" -gt "${#http_ports[@]}" ]; then
    echo "HTTP_PORTS names fewer than $replicas ports" >&2; exit 2
  fi
  echo "== round $run/$runs, $setup: cluster up (1 node, state $state, api 127.0.0.1:$api_port)" >&2
  started=$(date +%s)
  "$cluster" --state-dir "$state" up --hyperkube "$hyperkube" --nodes 1 \
    --api-port "$api_port" --etcd-port "$etcd_port" >&2
  "$bench" install-crds --state-dir "$state"
  replica_args=()
  for ((i = 0; i < replicas; i++)); do
    name="bench-webhook-${names[$i]}"
    port="${http_ports[$i]}"
    "$cluster" --state-dir "$state" addon --name "$name" -- \
      "$controller" --http-addr="127.0.0.1:$port" --identity="$name" \
      --webhook-addr="127.0.0.1:$webhook_port" \
      --webhook-url="https://127.0.0.1:$webhook_port/mutate-services" \
      --webhook-dns-name=127.0.0.1 --webhook-secret=kube-system/svcnet-webhook-tls \
      --webhook-configuration=svcnet
    replica_args+=(--replica "$name=$port")
  done
  "$bench" measure --state-dir "$state" --setup "$setup" "${replica_args[@]}" \
    --services "$services" --clients "$clients" --warmup "$warmup" --out "$out/$setup-$run.json"
  results+=(--result "$out/$setup-$run.json")
  mkdir -p "$out/logs-$setup-$run"
  cp "$state"/logs/*.log "$out/logs-$setup-$run/" 2>/dev/null || true
  down
  echo "== round $run/$runs, $setup: done in $(( $(date +%s) - started )) s (cluster logs kept in $out/logs-$setup-$run)" >&2
done
done

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
header="$(date -u +%Y-%m-%d) · nproc $(nproc) · ${cpu:-unknown CPU} · ${mem} RAM · $(uname -sr) · commit $commit · Kubernetes v1.36.3 · N = $services Services, C = $clients clients"
doc_flag=()
if [ "${WRITE_DOC:-1}" = 1 ]; then doc_flag=(--doc "$root/docs/benchmarks.md"); fi
"$bench" report "${results[@]}" --header "$header" "${doc_flag[@]}"
echo "raw results: $out" >&2
