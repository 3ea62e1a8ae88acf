#!/usr/bin/env bash
# svcnet on kind, for users with a container engine (our CI machines have none, so `make test` runs the
# same chart on the local cluster instead; see docs/local-cluster.md). Creates the cluster from
# kind-config.yaml, builds the image from the repository's Dockerfile, loads it into the nodes, installs
# the chart as a user would, and runs the e2e tests, sending test traffic from pods through the API.
#
# Usage: bash e2e/kind/run.sh            (KEEP=1 leaves the cluster up; CLUSTER=svcnet names it)
# Needs: docker, kind, cargo; helm and kubectl come from scripts/install-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
name="${CLUSTER:-svcnet}"
tools="$(bash scripts/install-tools.sh)"
export KUBECONFIG="${KUBECONFIG_KIND:-$PWD/target/kind-$name.kubeconfig}"
for tool in docker kind; do
  command -v "$tool" >/dev/null || { echo "e2e/kind/run.sh needs $tool" >&2; exit 1; }
done

kind create cluster --name "$name" --config e2e/kind/kind-config.yaml --kubeconfig "$KUBECONFIG"
[ "${KEEP:-0}" = 1 ] || trap 'kind delete cluster --name "$name"' EXIT

docker build -t ghcr.io/svcnet/svcnet:kind .
kind load docker-image --name "$name" ghcr.io/svcnet/svcnet:kind

# The apiserver's own address: the `kubernetes` Service needs svcnet-proxy, which needs the apiserver.
api="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name-control-plane")"
"$tools/helm" install svcnet charts/svcnet --namespace svcnet --create-namespace \
  --values e2e/kind/values.yaml --set kubernetesAPI.host="$api" --wait --timeout 5m
"$tools/kubectl" -n svcnet get pods -o wide

# Client pods on every node: the traffic tests send through them with `kubectl exec`.
"$tools/kubectl" apply -f e2e/kind/probers.yaml
"$tools/kubectl" -n svcnet-e2e rollout status daemonset/svcnet-e2e-prober --timeout=3m

# The same e2e tests as on the local cluster: those through the API (allocation, EndpointSlices, the
# chart, the configuration) and the traffic tests, whose probes run in pods (SVCNET_PROBE=exec) and
# from this host as the outside client. Left out: tests that start and stop svcnet's processes or
# enter a node's network namespace (local cluster only), and those that need the local cluster's
# upstream controller or its configuration.
SVCNET_INSTALL=helm SVCNET_PROBE=exec SVCNET_TESTSERVER_IMAGE=ghcr.io/svcnet/svcnet:kind \
  cargo test -p svcnet-e2e \
  --test allocation --test endpointslices --test chart --test config_crd --test differential \
  --test proxy --test proxy_udp -- \
  --ignored --skip a_burst_from_20_clients --skip with_the_webhook_down --skip max_endpoints_per_slice \
  --skip svcnet_and_upstream
