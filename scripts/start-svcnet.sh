#!/usr/bin/env bash
# Starts svcnet beside the running local cluster (until the Helm chart runs it as pods): the
# controller on loopback, and svcnet-proxy in every node's network namespace, as a host-network
# DaemonSet pod would run (the same command as e2e/src/kit/addons.rs). `svcnet-cluster down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=target/debug/svcnet-cluster
"$cluster" addon --name svcnet-controller -- "$PWD/target/debug/svcnet-controller" \
  --http-addr=127.0.0.1:18080 --identity=svcnet-controller
for node in $("$cluster" inventory | python3 -c 'import json,sys; print(" ".join(n["name"] for n in json.load(sys.stdin)["nodes"]))'); do
  "$cluster" addon --name "svcnet-proxy-$node" --node "$node" -- "$PWD/target/debug/svcnet-proxy" \
    --node-name="$node" \
    --cluster-cidr=10.244.0.0/16 --cluster-cidr=fd00:10:244::/56 \
    --service-cidr=10.96.0.0/16 --service-cidr=fd00:10:96::/108
done
