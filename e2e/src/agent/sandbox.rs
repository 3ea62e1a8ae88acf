//! A pod's network: its own namespace with `eth0`, a veth whose node end carries the pod gateway
//! address, and a /32 (/128) route to the pod on the node. Routed, not bridged, so a pod reaching
//! itself through a Service hairpins through the node without special bridge settings.

use std::fs;
use std::net::IpAddr;

use crate::addresses as plan;
use crate::error::Result;
use crate::inventory::StateDir;
use crate::netns;

/// Names of a pod's namespace and of the node end of its veth, derived from the pod's uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNames {
    pub netns: String,
    pub veth: String,
}

pub fn names(cluster_id: &str, uid: &str) -> SandboxNames {
    let short: String = uid.chars().filter(|c| *c != '-').take(12).collect();
    SandboxNames {
        netns: format!("svcnet-{cluster_id}-p{short}"),
        // Link names have at most 15 characters.
        veth: format!("v{short}"),
    }
}

/// Creates the sandbox (replacing one a previous agent left for the same pod). The namespace is
/// recorded in the state directory first, so `down` finds it whatever happens next.
pub fn create(
    state: &StateDir,
    node_netns: &str,
    node_index: u8,
    names: &SandboxNames,
    ips: &[IpAddr],
) -> Result<()> {
    fs::create_dir_all(state.pods_dir())?;
    fs::write(state.pods_dir().join(&names.netns), b"")?;
    netns::delete(&names.netns)?;
    netns::add(&names.netns)?;
    if ips.iter().any(IpAddr::is_ipv6) {
        netns::skip_ipv6_dad(&names.netns)?;
    }
    let pod = Some(names.netns.as_str());
    let node = Some(node_netns);
    let veth = names.veth.as_str();
    netns::ip(
        node,
        &[
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &names.netns,
        ],
    )?;
    netns::ip(pod, &["link", "set", "lo", "up"])?;
    netns::ip(node, &["link", "set", veth, "up"])?;
    for ip in ips {
        let (gw, family, host_bits) = match ip {
            IpAddr::V4(_) => (plan::pod_gateway_v4(node_index).to_string(), "-4", "32"),
            IpAddr::V6(_) => (plan::pod_gateway_v6(node_index).to_string(), "-6", "128"),
        };
        let pod_addr = format!("{ip}/{host_bits}");
        let gw_addr = format!("{gw}/{host_bits}");
        netns::ip(pod, &["addr", "add", &pod_addr, "dev", "eth0", "nodad"])?;
        netns::ip(node, &["addr", "add", &gw_addr, "dev", veth, "nodad"])?;
        netns::ip(node, &[family, "route", "replace", &pod_addr, "dev", veth])?;
    }
    netns::ip(pod, &["link", "set", "eth0", "up"])?;
    for ip in ips {
        let (gw, family) = match ip {
            IpAddr::V4(_) => (plan::pod_gateway_v4(node_index).to_string(), "-4"),
            IpAddr::V6(_) => (plan::pod_gateway_v6(node_index).to_string(), "-6"),
        };
        netns::ip(
            pod,
            &[family, "route", "add", &gw, "dev", "eth0", "scope", "link"],
        )?;
        netns::ip(
            pod,
            &[family, "route", "add", "default", "via", &gw, "dev", "eth0"],
        )?;
    }
    Ok(())
}

/// Removes the namespace (its veth and the node's route go with it) and its record.
pub fn destroy(state: &StateDir, names: &SandboxNames) -> Result<()> {
    netns::delete(&names.netns)?;
    match fs::remove_file(state.pods_dir().join(&names.netns)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_link_name_limits() {
        let n = names("abc123", "0f3c9a2e-1b2c-4d5e-8f90-123456789abc");
        assert_eq!(n.netns, "svcnet-abc123-p0f3c9a2e1b2c");
        assert_eq!(n.veth, "v0f3c9a2e1b2c");
        assert!(n.veth.len() <= 15);
    }
}
