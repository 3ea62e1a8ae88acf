#!/usr/bin/env bash
# Installs svcnet on the running local cluster with Helm, as a user would on a real cluster: the chart's
# controller Deployment and proxy DaemonSet run as pods (the node agent runs pods of svcnet's image with
# the locally built binaries and the pods' ServiceAccount tokens). kube-apiserver runs in the root
# network namespace, which has no route to Services, so a relay on 127.0.0.1:18443 forwards webhook
# calls to the webhook Service through node-1's svcnet-proxy rules.
# Usage: bash scripts/install-svcnet.sh [extra helm args]     (uninstall: helm -n svcnet uninstall svcnet)
set -euo pipefail
cd "$(dirname "$0")/.."
state="${SVCNET_STATE_DIR:-$PWD/e2e/.state}"
export KUBECONFIG="$state/kubeconfig"
tools="$(bash scripts/install-tools.sh)"
cluster=target/debug/svcnet-cluster

"$tools/helm" upgrade --install svcnet charts/svcnet --namespace svcnet --create-namespace \
  --values e2e/helm/local-values.yaml --wait --timeout 5m "$@"
ip="$("$tools/kubectl" -n svcnet get service svcnet-webhook -o jsonpath='{.spec.clusterIP}')"
"$cluster" stop-addon --name webhook-relay >/dev/null 2>&1 || true
"$cluster" addon --name webhook-relay -- "$PWD/$cluster" relay-into \
  --listen 127.0.0.1:18443 --node node-1 --to "$ip:443"
echo "svcnet installed with Helm (namespace svcnet); the apiserver reaches the webhook through 127.0.0.1:18443 -> $ip:443"
