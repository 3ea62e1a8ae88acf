//! Fixtures shared by the integration tests.
//!
//! Address plan (design.md): nodes 172.18.0.0/24 (this node `node-a` = 172.18.0.2 in
//! `zone-a`, `node-b` = 172.18.0.3 in `zone-b`), pods 10.244.0.0/16 (10.244.1.0/24 on node-a,
//! 10.244.2.0/24 on node-b), services 10.96.0.0/16 (IPv6 fd00:10:96::/108), outside client
//! 172.18.0.200.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;

use ipnet::IpNet;
use svcnet_proxy::testing::{FakeNft, Outcome, Packet, Tracer};
use svcnet_proxy::{
    Committed, EndpointState, Family, LoadBalancing, Protocol, ProxyConfig, ServiceKey,
    ServiceState, State, TrafficPolicy, Transaction, compile,
};

pub const THIS_NODE: &str = "node-a";
pub const OTHER_NODE: &str = "node-b";

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

pub fn node_ip() -> IpAddr {
    ip("172.18.0.2")
}

pub fn outside() -> IpAddr {
    ip("172.18.0.200")
}

/// Pod `n` on this node.
pub fn local_pod(n: u8) -> IpAddr {
    IpAddr::from([10, 244, 1, n])
}

/// Pod `n` on the other node.
pub fn remote_pod(n: u8) -> IpAddr {
    IpAddr::from([10, 244, 2, n])
}

pub fn config() -> ProxyConfig {
    let mut config = ProxyConfig::new(THIS_NODE, vec![node_ip(), ip("fd00:172:18::2")]);
    config.node_zone = Some("zone-a".to_owned());
    config.cluster_cidrs = vec![net("10.244.0.0/16"), net("fd00:10:244::/56")];
    config.service_cidrs = vec![net("10.96.0.0/16"), net("fd00:10:96::/108")];
    config
}

pub fn state() -> State {
    State::new(Family::V4, config())
}

pub fn key(name: &str) -> ServiceKey {
    ServiceKey::new("default", name, "http", Protocol::Tcp)
}

pub fn local_ep(n: u8) -> EndpointState {
    EndpointState::ready(local_pod(n), 8080, THIS_NODE)
}

pub fn remote_ep(n: u8) -> EndpointState {
    EndpointState::ready(remote_pod(n), 8080, OTHER_NODE)
}

pub fn dnat(addr: IpAddr, masquerade: bool) -> Outcome {
    Outcome::Dnat {
        addr,
        port: 8080,
        masquerade,
    }
}

/// Add a service port and its endpoints.
pub fn with(mut state: State, name: &str, svc: ServiceState, eps: Vec<EndpointState>) -> State {
    state.services.insert(key(name), svc);
    state.endpoints.insert(key(name), eps);
    state
}

/// Full-sync `state`, apply it to a fake nft (which must accept it).
pub fn applied(state: &State) -> (FakeNft, Committed, Transaction) {
    let (tx, committed) = compile(state, None);
    let mut nft = FakeNft::new();
    nft.apply(&tx).unwrap_or_else(|e| panic!("{e}\n{tx}"));
    (nft, committed, tx)
}

/// Every outcome of `packet` against the full-sync ruleset of `state`.
pub fn trace(state: &State, packet: &Packet) -> Vec<Outcome> {
    let (nft, _, _) = applied(state);
    Tracer::new(nft.table().unwrap(), &state.config).trace(packet)
}

/// The states kept as golden rulesets (and applied to the real kernel).
pub fn golden_states() -> Vec<(&'static str, State)> {
    let two = with(
        state(),
        "web",
        ServiceState::cluster_ip(ip("10.96.0.10"), 80),
        vec![local_ep(5), remote_ep(7)],
    );

    let nodeport_local = with(
        state(),
        "nodeport-local",
        ServiceState {
            node_port: Some(30080),
            external_traffic_policy: TrafficPolicy::Local,
            health_check_node_port: Some(31080),
            ..ServiceState::cluster_ip(ip("10.96.0.20"), 80)
        },
        vec![local_ep(6), remote_ep(8)],
    );

    // NodePorts on every local address (nft must take 0.0.0.0/0 in the interval set).
    let mut everywhere = state();
    everywhere.config.node_port_addresses = vec![net("0.0.0.0/0")];
    let none = with(
        everywhere,
        "empty",
        ServiceState {
            node_port: Some(30030),
            ..ServiceState::cluster_ip(ip("10.96.0.30"), 80)
        },
        vec![],
    );

    let affinity = with(
        state(),
        "sticky",
        ServiceState {
            client_ip_affinity_timeout: Some(10800),
            ..ServiceState::cluster_ip(ip("10.96.0.40"), 80)
        },
        vec![local_ep(7), remote_ep(9)],
    );

    let lb = with(
        state(),
        "lb",
        ServiceState {
            node_port: Some(30443),
            external_ips: vec![ip("172.18.0.150")],
            load_balancer_ips: vec![ip("172.18.0.100")],
            load_balancer_source_ranges: vec![net("203.0.113.0/24"), net("198.51.100.0/24")],
            ..ServiceState::cluster_ip(ip("10.96.0.50"), 443)
        },
        vec![remote_ep(10)],
    );

    let terminating = with(
        with(
            state(),
            "rollout",
            ServiceState::cluster_ip(ip("10.96.0.60"), 80),
            vec![local_ep(11).terminating(), remote_ep(11)],
        ),
        "drain",
        ServiceState::cluster_ip(ip("10.96.0.61"), 80),
        vec![local_ep(12).terminating(), remote_ep(12).terminating()],
    );

    let mut v6 = State::new(Family::V6, config());
    // 63 characters, the longest Kubernetes name: IPv6 endpoint chain names get truncated.
    let long = "a-very-long-name-".repeat(2) + "that-fills-all-sixty-three-ch";
    // All three want NodePort udp/30053: the first in key order gets it.
    for (name, mode, cip) in [
        ("round-robin", LoadBalancing::RoundRobin, "fd00:10:96::10"),
        ("source-hash", LoadBalancing::SourceHash, "fd00:10:96::11"),
        (long.as_str(), LoadBalancing::Random, "fd00:10:96::12"),
    ] {
        let key = ServiceKey::new(&long, name, &long, Protocol::Udp);
        let svc = ServiceState {
            load_balancing: mode,
            cluster_ips: vec![ip("10.96.0.70"), ip(cip)],
            node_port: Some(30053),
            ..ServiceState::cluster_ip(ip(cip), 53)
        };
        v6.services.insert(key.clone(), svc);
        let eps = vec![
            EndpointState::ready(ip("fd00:10:244:1::5"), 5353, THIS_NODE),
            EndpointState::ready(ip("fd00:10:244:2::7"), 5353, OTHER_NODE),
            EndpointState::ready(ip("10.244.1.99"), 5353, THIS_NODE),
        ];
        v6.endpoints.insert(key, eps);
    }

    vec![
        ("clusterip-two-endpoints", two),
        ("nodeport-local", nodeport_local),
        ("no-endpoints", none),
        ("client-ip-affinity", affinity),
        ("loadbalancer-source-ranges", lb),
        ("terminating-fallback", terminating),
        ("ipv6-load-balancing-modes", v6),
    ]
}

/// A tiny deterministic generator (xorshift64*), so the sequence is the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

pub fn random_service(rng: &mut Rng, i: u64) -> (ServiceState, Vec<EndpointState>) {
    let policy = |r: &mut Rng| {
        if r.below(3) == 0 {
            TrafficPolicy::Local
        } else {
            TrafficPolicy::Cluster
        }
    };
    let svc = ServiceState {
        node_port: (rng.below(2) == 0).then_some(30000 + rng.below(4) as u16),
        external_ips: if rng.below(3) == 0 {
            vec![ip("172.18.0.150")]
        } else {
            vec![]
        },
        load_balancer_ips: if rng.below(3) == 0 {
            vec![ip("172.18.0.100")]
        } else {
            vec![]
        },
        load_balancer_source_ranges: if rng.below(2) == 0 {
            vec![net("203.0.113.0/24")]
        } else {
            vec![]
        },
        client_ip_affinity_timeout: [None, Some(60), Some(600)][rng.below(3) as usize],
        external_traffic_policy: policy(rng),
        internal_traffic_policy: policy(rng),
        load_balancing: [
            LoadBalancing::Random,
            LoadBalancing::RoundRobin,
            LoadBalancing::SourceHash,
        ][rng.below(3) as usize],
        ..ServiceState::cluster_ip(IpAddr::from([10, 96, 0, i as u8 + 1]), 80)
    };
    let eps = (0..rng.below(4))
        .map(|_| {
            let n = rng.below(5) as u8 + 1;
            let ep = if rng.below(2) == 0 {
                local_ep(n)
            } else {
                remote_ep(n)
            };
            match rng.below(4) {
                0 => ep.terminating(),
                1 => ep.for_zone(["zone-a", "zone-b"][rng.below(2) as usize]),
                _ => ep,
            }
        })
        .collect();
    (svc, eps)
}

/// Add, replace or remove one to three of eight service ports at random.
pub fn random_change(rng: &mut Rng, mut state: State) -> State {
    for _ in 0..=rng.below(3) {
        let i = rng.below(8);
        let name = format!("svc-{i}");
        if rng.below(4) == 0 {
            state.services.remove(&key(&name));
            state.endpoints.remove(&key(&name));
        } else {
            let (svc, eps) = random_service(rng, i);
            state = with(state, &name, svc, eps);
        }
    }
    state
}
