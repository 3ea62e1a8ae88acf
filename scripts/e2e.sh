#!/usr/bin/env bash
# The e2e suite, in two phases, each on a fresh local cluster that goes down whatever happens:
#  1. svcnet beside the cluster as addons (scripts/start-svcnet.sh): every e2e test, including those that
#     kill and restart svcnet's processes themselves;
#  2. svcnet installed with Helm (scripts/install-svcnet.sh), the chart's pods running the local binaries:
#     every test that does not manage svcnet's processes itself, then `helm uninstall` leaving nothing.
# After each phase, `down` and a check that nothing of ours is left.
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=target/debug/svcnet-cluster
state="${SVCNET_STATE_DIR:-$PWD/e2e/.state}"
inventory="$PWD/target/e2e-last-inventory.json"
export SVCNET_HYPERKUBE="$(bash e2e/hyperkube/build.sh)"

# Tests that stop and start svcnet's processes by hand (addons), so only phase 1 runs them.
addon_only=(
  --skip controller_killed_mid_churn
  --skip with_two_replicas_only_the_leader_writes
  --skip a_burst_from_20_clients_against_two_replicas
  --skip with_the_webhook_down_services_are_still_created
  --skip max_endpoints_per_slice_from_the_configuration
  --skip restarting_the_proxy
)

status=0
phase() {
  local name="$1" install="$2"
  shift 2
  echo "== e2e phase: $name" >&2
  if "$cluster" up --hyperkube "$SVCNET_HYPERKUBE" ${E2E_CLUSTER_FLAGS:-} && bash "$install"; then
    cargo test -p svcnet-e2e --tests --no-fail-fast -- --ignored --skip down_leaves \
      --skip helm_uninstall "$@" || status=$?
    if [ "$name" = helm ]; then
      cargo test -p svcnet-e2e --test helm_uninstall -- --ignored || status=$?
    fi
  else
    status=1
  fi
  [ "$status" -eq 0 ] || bash scripts/show-cluster-logs.sh "$state"
  "$cluster" inventory > "$inventory" || true
  "$cluster" down
  SVCNET_INVENTORY="$inventory" cargo test -p svcnet-e2e --test teardown -- --ignored || status=$?
}

phase addons scripts/start-svcnet.sh
if [ "$status" -eq 0 ]; then
  SVCNET_INSTALL=helm phase helm scripts/install-svcnet.sh "${addon_only[@]}"
fi
exit "$status"
