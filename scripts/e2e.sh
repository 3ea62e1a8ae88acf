#!/usr/bin/env bash
# The e2e suite: a fresh local cluster, svcnet beside it, every e2e test, then `down` and a check that
# nothing of ours is left. The cluster goes down whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=target/debug/svcnet-cluster
state="${SVCNET_STATE_DIR:-$PWD/e2e/.state}"
inventory="$PWD/target/e2e-last-inventory.json"
export SVCNET_HYPERKUBE="$(bash e2e/hyperkube/build.sh)"

status=0
if "$cluster" up --hyperkube "$SVCNET_HYPERKUBE" ${E2E_CLUSTER_FLAGS:-}; then
  bash scripts/start-svcnet.sh
  cargo test -p svcnet-e2e --tests --no-fail-fast -- --ignored --skip down_leaves || status=$?
else
  status=1
fi
[ "$status" -eq 0 ] || bash scripts/show-cluster-logs.sh "$state"
"$cluster" inventory > "$inventory" || true
"$cluster" down
SVCNET_INVENTORY="$inventory" cargo test -p svcnet-e2e --test teardown -- --ignored
exit "$status"
