//! The test address plan, written once. Every address here lives only inside the network namespaces
//! the local cluster creates; nothing is ever sent anywhere else.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// The node network: every node and the outside client hang off one bridge.
pub const NODE_SUBNET_V4: &str = "172.18.0.0/24";
pub const NODE_SUBNET_V6: &str = "fd00:172:18::/64";
/// The apiserver as the node network sees it (a relay in the fabric namespace to the apiserver on
/// loopback): the address it advertises, so the `kubernetes` Service has a reachable endpoint.
pub const API_V4: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
/// The fabric's IPv6 address: every node's IPv6 default route (nothing is forwarded on from there).
pub const FABRIC_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 1);
/// The client that stands for "outside the cluster" (NodePort and LoadBalancer tests).
pub const OUTSIDE_V4: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 200);
pub const OUTSIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 0x200);
/// All pods; each node gets one /24 (and one IPv6 /64) of it.
pub const CLUSTER_CIDR_V4: &str = "10.244.0.0/16";
pub const CLUSTER_CIDR_V6: &str = "fd00:10:244::/56";
/// The apiserver's `--service-cluster-ip-range`.
pub const SERVICE_CIDR_V4: &str = "10.96.0.0/16";
pub const SERVICE_CIDR_V6: &str = "fd00:10:96::/108";
/// The apiserver's `--service-node-port-range`.
pub const NODE_PORT_RANGE: &str = "30000-32767";

/// The node with 1-based `index` is 172.18.0.(10 + index).
pub fn node_v4(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 18, 0, 10 + index)
}

pub fn node_v6(index: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x172, 0x18, 0, 0, 0, 0, 0x10 + u16::from(index))
}

/// Pod CIDR of the node with 1-based `index`: 10.244.<index>.0/24.
pub fn pod_cidr_v4(index: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 244, index, 0), 24).unwrap_or_default()
}

/// Pod CIDR of the node with 1-based `index` in a `--simulated` cluster: 10.(128 + index).0.0/16
/// (nodes 1-127).
pub fn simulated_pod_cidr_v4(index: u8) -> Ipv4Net {
    let second = 128u8.saturating_add(index);
    Ipv4Net::new(Ipv4Addr::new(10, second, 0, 0), 16).unwrap_or_default()
}

/// The node's IPv4 pod CIDR: [`simulated_pod_cidr_v4`] in a `--simulated` cluster, else
/// [`pod_cidr_v4`].
pub fn node_pod_cidr_v4(index: u8, simulated: bool) -> Ipv4Net {
    if simulated {
        simulated_pod_cidr_v4(index)
    } else {
        pod_cidr_v4(index)
    }
}

/// IPv6 pod CIDR of the node with 1-based `index`: fd00:10:244:<index>::/64.
pub fn pod_cidr_v6(index: u8) -> Ipv6Net {
    Ipv6Net::new(
        Ipv6Addr::new(0xfd00, 0x10, 0x244, u16::from(index), 0, 0, 0, 0),
        64,
    )
    .unwrap_or_default()
}

/// The first address of a node's pod CIDR is the pods' gateway: the node side of every pod's veth.
/// (Simulated pods have no veth, so no gateway.)
pub fn pod_gateway_v4(index: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(pod_cidr_v4(index).network()) + 1)
}

pub fn pod_gateway_v6(index: u8) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(pod_cidr_v6(index).network()) + 1)
}

/// Nodes are spread over `zones` zones round robin: zone-a, zone-b, ...
pub fn zone(index: u8, zones: u8) -> String {
    let zones = zones.max(1);
    let letter = char::from(b'a' + (index.saturating_sub(1) % zones));
    format!("zone-{letter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_consistent() {
        assert_eq!(node_v4(1).to_string(), "172.18.0.11");
        assert_eq!(pod_cidr_v4(2).to_string(), "10.244.2.0/24");
        assert_eq!(pod_gateway_v4(2).to_string(), "10.244.2.1");
        assert_eq!(pod_cidr_v6(3).to_string(), "fd00:10:244:3::/64");
        assert_eq!(pod_gateway_v6(3).to_string(), "fd00:10:244:3::1");
        assert_eq!(zone(1, 2), "zone-a");
        assert_eq!(zone(2, 2), "zone-b");
        assert_eq!(zone(3, 2), "zone-a");
        let cluster: Ipv4Net = CLUSTER_CIDR_V4.parse().unwrap_or_default();
        assert!(cluster.contains(&pod_cidr_v4(200)));
        assert_eq!(simulated_pod_cidr_v4(1).to_string(), "10.129.0.0/16");
        assert_eq!(node_pod_cidr_v4(3, true).to_string(), "10.131.0.0/16");
        assert_eq!(node_pod_cidr_v4(3, false).to_string(), "10.244.3.0/24");
        assert_eq!(simulated_pod_cidr_v4(127).to_string(), "10.255.0.0/16");
        assert!(!cluster.contains(&simulated_pod_cidr_v4(3).network()));
    }
}
