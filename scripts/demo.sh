#!/usr/bin/env bash
# The demo, on the running local cluster: svcnet installed with Helm (controller Deployment with the
# allocation webhook, a proxy per node) serves the quickstart's Services; requests to the ClusterIP from
# a node and to the NodePort from outside the cluster are answered by the Deployment's pods.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG="${SVCNET_STATE_DIR:-$PWD/e2e/.state}/kubeconfig"
kubectl="$(bash scripts/install-tools.sh)/kubectl"
cluster=target/debug/svcnet-cluster

echo "== helm install svcnet charts/svcnet (the pods run the locally built binaries)"
bash scripts/install-svcnet.sh
"$kubectl" -n svcnet get pods -o wide
echo "== nodes"
"$kubectl" get nodes -L topology.kubernetes.io/zone -o wide
"$kubectl" create namespace demo --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" -n demo apply -f examples/quickstart/
"$kubectl" -n demo rollout status deployment/echo --timeout=120s
echo "== pods"
"$kubectl" -n demo get pods -o wide
echo "== Services: ClusterIPs and NodePorts from svcnet's webhook; the EndpointSlices svcnet-controller wrote"
"$kubectl" -n demo get services
"$kubectl" -n demo wait endpointslice -l kubernetes.io/service-name=echo \
  --for=jsonpath='{.endpoints[2].conditions.ready}'=true --timeout=60s >/dev/null
"$kubectl" -n demo get endpointslices -o wide

# Asks until answered (the proxies program a change within a sync, about 100 ms).
ask() {
  for _ in $(seq 1 50); do
    if "$cluster" probe "$@" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "no answer: $*" >&2
  return 1
}
cluster_ip="$("$kubectl" -n demo get service echo -o jsonpath='{.spec.clusterIP}')"
node_port="$("$kubectl" -n demo get service echo-nodeport -o jsonpath='{.spec.ports[0].nodePort}')"
echo "== requests to the ClusterIP $cluster_ip from node-1 (TCP and UDP)"
for _ in 1 2 3 4 5 6; do ask --from node-1 "$cluster_ip:80"; done
ask --from node-1 --udp "$cluster_ip:81"
echo "== requests from outside the cluster to NodePort $node_port on each node"
for node_ip in 172.18.0.11 172.18.0.12 172.18.0.13; do ask --from outside "$node_ip:$node_port"; done
cat <<MSG

Look around:   export KUBECONFIG=$KUBECONFIG
               $kubectl -n demo get services,endpointslices,pods -o wide
               $kubectl get svcnetconfig default -o yaml     # usage per range, conditions
               $kubectl -n svcnet get pods                  # svcnet itself
               $cluster status; $cluster probe --from outside <ip:port>
               logs: ${SVCNET_STATE_DIR:-$PWD/e2e/.state}/logs/
Uninstall:     $(bash scripts/install-tools.sh)/helm -n svcnet uninstall svcnet
Tear down:     make cluster-down
MSG
