#!/usr/bin/env bash
# The demo: on the running local cluster, svcnet-controller writes the EndpointSlice of a Service, and
# the Deployment's pods answer by pod IP from a node and from the outside client. (Traffic through the
# ClusterIP and NodePort joins the demo with svcnet-proxy.)
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG="${SVCNET_STATE_DIR:-$PWD/e2e/.state}/kubeconfig"
kubectl="$(bash scripts/install-tools.sh)/kubectl"
cluster=target/debug/svcnet-cluster

# svcnet-controller runs beside the cluster until the Helm chart installs it as pods.
"$cluster" addon --name svcnet-controller -- "$PWD/target/debug/svcnet-controller" \
  --http-addr=127.0.0.1:18080 --identity=svcnet-controller
echo "== nodes"
"$kubectl" get nodes -L topology.kubernetes.io/zone -o wide
"$kubectl" create namespace demo --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" -n demo apply -f examples/local-cluster/echo-deployment.yaml
"$kubectl" -n demo apply -f examples/local-cluster/echo-service.yaml
"$kubectl" -n demo rollout status deployment/echo --timeout=120s
echo "== pods"
"$kubectl" -n demo get pods -o wide
echo "== the Service and the EndpointSlice svcnet-controller wrote for it"
"$kubectl" -n demo get service echo
"$kubectl" -n demo wait endpointslice -l kubernetes.io/service-name=echo \
  --for=jsonpath='{.endpoints[2].conditions.ready}'=true --timeout=60s >/dev/null
"$kubectl" -n demo get endpointslices -l kubernetes.io/service-name=echo -o wide
echo "== requests to each pod IP, from node-1 and from outside the cluster"
for ip in $("$kubectl" -n demo get pods -l app=echo -o jsonpath='{.items[*].status.podIP}'); do
  "$cluster" probe --from node-1 "$ip:8080"
  "$cluster" probe --from outside "$ip:8080"
  "$cluster" probe --from outside --udp "$ip:8081"
done
cat <<MSG

Look around:   export KUBECONFIG=$KUBECONFIG; $kubectl get pods -A -o wide
               $cluster status
Tear down:     make cluster-down
MSG
