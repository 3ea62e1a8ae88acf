//! The plain input model: what the watchers hand the compiler for one address family.
//!
//! Nothing here knows about Kubernetes objects; the runner translates Services, EndpointSlices
//! and the Node into these values.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::Error;

/// The address family one ruleset (one table) is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Table `ip svcnet`.
    V4,
    /// Table `ip6 svcnet`.
    V6,
}

impl Family {
    /// The nft family keyword, also the payload prefix (`ip daddr`, `ip6 daddr`).
    pub fn nft(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The nft data type of one address.
    pub fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    /// Whether `ip` belongs to this family.
    pub fn holds(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
        )
    }

    /// Whether `net` belongs to this family.
    pub fn holds_net(self, net: &IpNet) -> bool {
        self.holds(&net.addr())
    }

    /// The loopback range NodePorts never answer on.
    pub fn loopback(self) -> IpNet {
        match self {
            Family::V4 => IpNet::V4(ipnet::Ipv4Net::new_assert([127, 0, 0, 0].into(), 8)),
            Family::V6 => IpNet::V6(ipnet::Ipv6Net::new_assert(
                std::net::Ipv6Addr::LOCALHOST,
                128,
            )),
        }
    }
}

/// The L4 protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Lower-case name, as nft writes it (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One Service port: kube-proxy's "service port name" (`ns/svc:port`) plus its protocol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
    /// The port's name; empty for a Service with one unnamed port.
    pub port_name: String,
    pub protocol: Protocol,
}

impl ServiceKey {
    pub fn new(namespace: &str, name: &str, port_name: &str, protocol: Protocol) -> Self {
        ServiceKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            port_name: port_name.to_owned(),
            protocol,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ServiceKey {
            namespace,
            name,
            port_name,
            protocol,
        } = self;
        write!(f, "{namespace}/{name}:{port_name}/{}", protocol.as_str())
    }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// How a service chain picks among its endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LoadBalancing {
    /// `numgen random mod N` (kube-proxy's only mode).
    #[default]
    Random,
    /// `numgen inc mod N`: a per-rule counter, reset whenever the chain is rewritten.
    RoundRobin,
    /// `jhash ip saddr mod N`: one client address always lands on the same endpoint while the
    /// endpoint list is unchanged.
    SourceHash,
}

/// The state of one Service port, as seen on this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// `spec.clusterIPs`; the compiler uses the one of its family. A Service with no ClusterIP
    /// of the family (headless, or single-stack of the other family) gets no rules.
    pub cluster_ips: Vec<IpAddr>,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`.
    pub load_balancer_ips: Vec<IpAddr>,
    pub load_balancer_source_ranges: Vec<IpNet>,
    /// `sessionAffinity: ClientIP` with its timeout in seconds; `None` for `None`.
    pub client_ip_affinity_timeout: Option<u32>,
    pub external_traffic_policy: TrafficPolicy,
    pub internal_traffic_policy: TrafficPolicy,
    /// Served by the runner's health server; it needs no nftables rule.
    pub health_check_node_port: Option<u16>,
    pub load_balancing: LoadBalancing,
}

impl ServiceState {
    /// A ClusterIP Service port with defaults for everything else.
    pub fn cluster_ip(ip: IpAddr, port: u16) -> Self {
        ServiceState {
            cluster_ips: vec![ip],
            port,
            ..ServiceState::default()
        }
    }

    /// Whether traffic can reach it other than through its ClusterIP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }
}

/// One endpoint of a Service port (from an EndpointSlice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointState {
    pub ip: IpAddr,
    /// The resolved target port.
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
    /// `hints.forZones[].name`.
    pub for_zones: Vec<String>,
    /// `hints.forNodes[].name`.
    pub for_nodes: Vec<String>,
}

impl EndpointState {
    /// A ready, serving, non-terminating endpoint on `node`.
    pub fn ready(ip: IpAddr, port: u16, node: &str) -> Self {
        EndpointState {
            ip,
            port,
            ready: true,
            serving: true,
            terminating: false,
            node_name: Some(node.to_owned()),
            for_zones: Vec::new(),
            for_nodes: Vec::new(),
        }
    }

    /// The same endpoint, terminating but still serving.
    pub fn terminating(self) -> Self {
        EndpointState {
            ready: false,
            serving: true,
            terminating: true,
            ..self
        }
    }

    /// The same endpoint with a `forZones` hint.
    pub fn for_zone(mut self, zone: &str) -> Self {
        self.for_zones.push(zone.to_owned());
        self
    }

    /// The same endpoint with a `forNodes` hint.
    pub fn for_node(mut self, node: &str) -> Self {
        self.for_nodes.push(node.to_owned());
        self
    }
}

/// Node-wide settings. A change here makes the next sync a full one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub node_name: String,
    pub node_zone: Option<String>,
    /// This node's addresses (both families; the compiler picks its own).
    pub node_ips: Vec<IpAddr>,
    /// `nodePortAddresses`: NodePorts answer on local addresses inside these ranges (0.0.0.0/0:
    /// all of them). Empty means
    /// the node's IPs. Loopback is always left out.
    pub node_port_addresses: Vec<IpNet>,
    /// Pod ranges; traffic to a ClusterIP from outside them is masqueraded. Empty: not known, no
    /// such masquerading (like kube-proxy without a local-traffic detector).
    pub cluster_cidrs: Vec<IpNet>,
    /// Service ranges; traffic to an unallocated address in them is dropped. May be empty.
    pub service_cidrs: Vec<IpNet>,
    /// Masquerade all traffic to ClusterIPs.
    pub masquerade_all: bool,
    /// The bit of the packet mark that asks for masquerading (kube-proxy: 14, i.e. 0x4000).
    pub masquerade_bit: u8,
    pub masquerade_fully_random: bool,
    /// For Services without the `svcnet.dev/load-balancing` annotation.
    pub default_load_balancing: LoadBalancing,
}

impl ProxyConfig {
    /// Defaults like kube-proxy's for a node with these addresses.
    pub fn new(node_name: &str, node_ips: Vec<IpAddr>) -> Self {
        ProxyConfig {
            node_name: node_name.to_owned(),
            node_zone: None,
            node_ips,
            node_port_addresses: Vec::new(),
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            masquerade_all: false,
            masquerade_bit: 14,
            masquerade_fully_random: true,
            default_load_balancing: LoadBalancing::Random,
        }
    }

    /// Refuse settings the compiler would otherwise quietly work around.
    pub fn validate(&self) -> Result<(), Error> {
        if self.masquerade_bit > 31 {
            return Err(Error::MasqueradeBit(self.masquerade_bit));
        }
        for net in &self.node_port_addresses {
            let family = if net.addr().is_ipv4() {
                Family::V4
            } else {
                Family::V6
            };
            if family.loopback().contains(net) {
                return Err(Error::LoopbackNodePortAddress(*net));
            }
        }
        Ok(())
    }

    /// The mark value of [`ProxyConfig::masquerade_bit`].
    pub fn masquerade_mark(&self) -> u32 {
        1u32 << (self.masquerade_bit & 31)
    }
}

/// Everything one family's ruleset is compiled from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub family: Family,
    pub config: ProxyConfig,
    pub services: BTreeMap<ServiceKey, ServiceState>,
    pub endpoints: BTreeMap<ServiceKey, Vec<EndpointState>>,
}

impl State {
    pub fn new(family: Family, config: ProxyConfig) -> Self {
        State {
            family,
            config,
            services: BTreeMap::new(),
            endpoints: BTreeMap::new(),
        }
    }
}
