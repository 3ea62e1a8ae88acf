#!/usr/bin/env bash
# Starts svcnet beside the running local cluster (until the Helm chart runs it as pods): its CRDs, the
# controller (with the allocation webhook) on loopback, and svcnet-proxy in every node's network
# namespace, as a host-network DaemonSet pod would run. The same code starts them in the e2e tests
# (e2e/src/kit/addons.rs). `svcnet-cluster down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
target/debug/svcnet-cluster start-svcnet
