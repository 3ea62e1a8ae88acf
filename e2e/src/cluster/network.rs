//! The node network: a fabric namespace holding one bridge, every node and the outside client on it
//! through a veth, and routes so that every node and the outside client reach every pod CIDR.
//! The root namespace gets no link and no route.

use crate::addresses as plan;
use crate::error::Result;
use crate::inventory::{Inventory, NodeRecord, StateDir};
use crate::netns;

/// Creates the fabric namespace and its bridge, recording it before anything else is made.
pub fn create_fabric(state: &StateDir, inv: &mut Inventory) -> Result<()> {
    let fabric = format!("svcnet-{}-fabric", inv.cluster_id);
    record(state, inv, &fabric)?;
    inv.fabric_netns = Some(fabric.clone());
    state.save(inv)?;
    netns::ip(Some(&fabric), &["link", "set", "lo", "up"])?;
    netns::ip(Some(&fabric), &["link", "add", "br0", "type", "bridge"])?;
    netns::ip(Some(&fabric), &["link", "set", "br0", "up"])?;
    let api = format!("{}/24", plan::API_V4);
    netns::ip(Some(&fabric), &["addr", "add", &api, "dev", "br0"])?;
    if inv.dual_stack {
        let gw6 = format!("{}/64", plan::FABRIC_V6);
        netns::ip(Some(&fabric), &["addr", "add", &gw6, "dev", "br0", "nodad"])?;
    }
    Ok(())
}

/// Adds a namespace (recorded first, so a crash right after still gets it cleaned up).
fn record(state: &StateDir, inv: &mut Inventory, name: &str) -> Result<()> {
    inv.netns.push(name.to_owned());
    state.save(inv)?;
    netns::add(name)?;
    if inv.dual_stack {
        netns::skip_ipv6_dad(name)?;
    }
    Ok(())
}

/// Plugs namespace `ns` into the fabric bridge as `eth0` with the given addresses.
fn attach(inv: &Inventory, ns: &str, port: &str, v4: &str, v6: Option<&str>) -> Result<()> {
    let fabric = inv.fabric_netns.as_deref().unwrap_or_default();
    netns::ip(
        Some(fabric),
        &[
            "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    netns::ip(Some(fabric), &["link", "set", port, "master", "br0", "up"])?;
    netns::ip(Some(ns), &["link", "set", "lo", "up"])?;
    netns::ip(
        Some(ns),
        &["addr", "add", &format!("{v4}/24"), "dev", "eth0"],
    )?;
    if let Some(v6) = v6 {
        // No duplicate address detection: the addresses are planned, and DAD would delay them.
        netns::ip(
            Some(ns),
            &["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"],
        )?;
    }
    netns::ip(Some(ns), &["link", "set", "eth0", "up"])?;
    Ok(())
}

/// Creates node `index` (1-based): its namespace, its fabric port, forwarding on.
pub fn create_node(
    state: &StateDir,
    inv: &mut Inventory,
    index: u8,
    zones: u8,
) -> Result<NodeRecord> {
    let node = NodeRecord {
        name: format!("node-{index}"),
        index,
        zone: plan::zone(index, zones),
        netns: format!("svcnet-{}-node-{index}", inv.cluster_id),
        ipv4: plan::node_v4(index).to_string(),
        ipv6: inv.dual_stack.then(|| plan::node_v6(index).to_string()),
    };
    record(state, inv, &node.netns)?;
    attach(
        inv,
        &node.netns,
        &format!("n{index}"),
        &node.ipv4,
        node.ipv6.as_deref(),
    )?;
    // A default route, as a real node has: traffic from the node itself to a ClusterIP needs a route
    // before the nat output hook rewrites it. The fabric forwards nothing, so nothing leaves.
    let gw = plan::API_V4.to_string();
    netns::ip(Some(&node.netns), &["route", "add", "default", "via", &gw])?;
    if inv.dual_stack {
        let gw6 = plan::FABRIC_V6.to_string();
        netns::ip(
            Some(&node.netns),
            &["-6", "route", "add", "default", "via", &gw6],
        )?;
    }
    netns::sysctl(&node.netns, "net.ipv4.ip_forward", "1")?;
    netns::sysctl(&node.netns, "net.ipv4.conf.all.rp_filter", "0")?;
    if inv.dual_stack {
        netns::sysctl(&node.netns, "net.ipv6.conf.all.forwarding", "1")?;
    }
    inv.nodes.push(node.clone());
    state.save(inv)?;
    Ok(node)
}

/// Creates the outside client at 172.18.0.200.
pub fn create_outside(state: &StateDir, inv: &mut Inventory) -> Result<()> {
    let outside = format!("svcnet-{}-outside", inv.cluster_id);
    record(state, inv, &outside)?;
    inv.outside_netns = Some(outside.clone());
    state.save(inv)?;
    let v6 = plan::OUTSIDE_V6.to_string();
    attach(
        inv,
        &outside,
        "out",
        &plan::OUTSIDE_V4.to_string(),
        inv.dual_stack.then_some(v6.as_str()),
    )
}

/// Routes every pod CIDR through its node, in every node namespace, in the outside namespace and in
/// the fabric (which holds the apiserver relay, so pods' own API clients get their answers; the fabric
/// still forwards nothing).
pub fn add_pod_routes(inv: &Inventory) -> Result<()> {
    let mut sources: Vec<(&str, Option<u8>)> = inv
        .nodes
        .iter()
        .map(|n| (n.netns.as_str(), Some(n.index)))
        .collect();
    if let Some(outside) = inv.outside_netns.as_deref() {
        sources.push((outside, None));
    }
    if let Some(fabric) = inv.fabric_netns.as_deref() {
        sources.push((fabric, None));
    }
    for (ns, own) in sources {
        for node in inv.nodes.iter().filter(|n| Some(n.index) != own) {
            let cidr = plan::node_pod_cidr_v4(node.index, inv.simulated).to_string();
            netns::ip(Some(ns), &["route", "add", &cidr, "via", &node.ipv4])?;
            if let Some(v6) = &node.ipv6 {
                let cidr6 = plan::pod_cidr_v6(node.index).to_string();
                netns::ip(Some(ns), &["-6", "route", "add", &cidr6, "via", v6])?;
            }
        }
    }
    Ok(())
}
