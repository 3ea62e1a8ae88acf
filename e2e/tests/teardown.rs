//! `make cluster-down` leaves nothing of ours: run after it, against the inventory saved before it.

use svcnet_e2e::cluster::leftovers;
use svcnet_e2e::inventory::Inventory;

#[test]
#[ignore = "run by `make test-e2e` after `cluster-down`, with SVCNET_INVENTORY set"]
fn down_leaves_no_process_or_namespace_of_ours() {
    let path =
        std::env::var("SVCNET_INVENTORY").expect("SVCNET_INVENTORY names the saved inventory");
    let text = std::fs::read_to_string(&path).expect("saved inventory");
    let value: serde_json::Value = serde_json::from_str(&text).expect("inventory JSON");
    let inventory: Inventory = serde_json::from_value(value.clone()).expect("inventory");
    let pod_netns: Vec<String> =
        serde_json::from_value(value["pod_netns"].clone()).unwrap_or_default();
    assert!(
        !inventory.processes.is_empty() && !inventory.netns.is_empty(),
        "inventory is empty"
    );
    let left = leftovers(&inventory, &pod_netns);
    assert!(left.is_empty(), "left behind: {left:?}");
    let state = svcnet_e2e::inventory::StateDir::from_env();
    assert!(
        !state.root.exists(),
        "{} still exists",
        state.root.display()
    );
}
