//! The fixed part of the table: base chains, dispatch chains and the shared sets and maps.
//! It depends on the configuration only; services add chains and elements to it.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::ir::{
    Action, BaseHook, Chain, ChainType, ElemKey, Entry, Hook, KeyType, Match, Rule, Set, SetDef,
    SetKind, Table, Verdict,
};
use crate::model::{Family, LoadBalancing, Protocol, ProxyConfig};

pub const SERVICES: &str = "services";
pub const MASQUERADING: &str = "masquerading";
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
pub const REJECT_CHAIN: &str = "reject-chain";
pub const FIREWALL_CHECK: &str = "firewall-check";
pub const SERVICE_ENDPOINTS_CHECK: &str = "service-endpoints-check";
pub const NODEPORT_ENDPOINTS_CHECK: &str = "nodeport-endpoints-check";
pub const CLUSTER_IPS_CHECK: &str = "cluster-ips-check";

pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
pub const FIREWALL_IPS: &str = "firewall-ips";
pub const CLUSTER_IPS: &str = "cluster-ips";
pub const NODEPORT_IPS: &str = "nodeport-ips";
pub const HAIRPIN_ENDPOINTS: &str = "hairpin-endpoints";
/// The endpoint maps of a protocol, by destination and by NodePort.
pub fn endpoint_map(entry: Entry, proto: Protocol) -> String {
    let by = match entry {
        Entry::Destination => "service",
        Entry::NodePort => "nodeport",
    };
    format!("{by}-endpoints-{}", proto.as_str())
}

/// Load balancing over up to this many endpoints happens in shared chains (see [`Spread`]).
pub const SHARED_SPREAD_MAX: usize = 32;

/// A chain shared by every Service port that DNATs to one of `count` endpoints picked by `mode`
/// (random or source hash: the stateless ones), from the endpoint maps under the packet's
/// destination. It exists while some Service port uses it.
///
/// Why shared: the kernel checks every rule that reads a map for each element added to it, and
/// every element when a chain first reads it, so a lookup rule per Service makes loading the
/// maps cost Services x endpoints. Round-robin keeps a rule per Service: its counter is the
/// rule's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Spread {
    pub proto: Protocol,
    pub mode: LoadBalancing,
    pub count: usize,
    /// The Local chain's (indexes from [`LOCAL_INDEX_OFFSET`]).
    pub local: bool,
}

impl Spread {
    pub fn chain_name(&self) -> String {
        let mode = match self.mode {
            LoadBalancing::Random => "random",
            LoadBalancing::RoundRobin => "round-robin",
            LoadBalancing::SourceHash => "source-hash",
        };
        let local = if self.local { "-local" } else { "" };
        format!(
            "spread-{}-{mode}-{}{local}",
            self.proto.as_str(),
            self.count
        )
    }

    pub fn chain(&self) -> Chain {
        regular(
            &self.chain_name(),
            spread_rules(self.proto, self.mode, self.count, self.local),
        )
    }
}

/// The rules that DNAT to the endpoint picked among `count`, looked up by destination, then by
/// NodePort (a lookup that finds nothing lets the packet go on to the next rule).
pub fn spread_rules(proto: Protocol, mode: LoadBalancing, count: usize, local: bool) -> Vec<Rule> {
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let offset = if local { LOCAL_INDEX_OFFSET } else { 0 };
    [Entry::Destination, Entry::NodePort]
        .into_iter()
        .map(|entry| {
            // No `meta l4proto` match: nft adds the map's own (see `render::set_decl`).
            Rule::always(Action::DnatFromMap {
                mode,
                count,
                offset,
                entry,
                map: endpoint_map(entry, proto),
            })
        })
        .collect()
}

/// Added to the index of the Local chain's endpoints in the endpoint maps, so that a destination
/// leading to both policy chains (an external IP with policy Local: outside clients use the
/// Local chain, pods the Cluster chain) keeps two lists apart.
pub const LOCAL_INDEX_OFFSET: u32 = 1 << 31;

/// Priority of the DNAT chains (`dstnat`).
pub const DSTNAT: i32 = -100;
/// Priority of the masquerading chain (`srcnat`).
pub const SRCNAT: i32 = 100;
/// Filter chains that must see pre-DNAT destinations run just before DNAT (`dstnat - 10`).
pub const FILTER_PRE_DNAT: i32 = DSTNAT - 10;
/// Filter chain on output that must see post-DNAT packets (`dstnat + 10`).
pub const FILTER_POST_DNAT: i32 = DSTNAT + 10;

fn base(name: &str, chain_type: ChainType, hook: Hook, priority: i32, rules: Vec<Rule>) -> Chain {
    Chain {
        name: name.to_owned(),
        base: Some(BaseHook {
            chain_type,
            hook,
            priority,
        }),
        rules,
    }
}

fn regular(name: &str, rules: Vec<Rule>) -> Chain {
    Chain {
        name: name.to_owned(),
        base: None,
        rules,
    }
}

fn new_jump(chain: &str) -> Rule {
    Rule::new(
        vec![Match::CtStateNew],
        Action::Verdict(Verdict::Jump(chain.to_owned())),
    )
}

fn jump(chain: &str) -> Rule {
    Rule::always(Action::Verdict(Verdict::Jump(chain.to_owned())))
}

fn set(name: &str, key: KeyType, kind: SetKind, comment: &str) -> Set {
    let def = SetDef {
        name: name.to_owned(),
        key,
        kind,
        timeout_seconds: None,
        comment: Some(comment.to_owned()),
    };
    Set {
        def,
        elements: BTreeMap::new(),
    }
}

/// The ranges NodePorts answer on (local addresses in them): `nodePortAddresses` of this family,
/// or this node's IPs; never loopback (kube-proxy does not support NodePorts on localhost).
pub fn nodeport_ranges(family: Family, config: &ProxyConfig) -> Vec<IpNet> {
    let configured: Vec<IpNet> = config
        .node_port_addresses
        .iter()
        .filter(|n| family.holds_net(n))
        .copied()
        .collect();
    let ranges = if configured.is_empty() {
        config
            .node_ips
            .iter()
            .filter(|ip| family.holds(ip))
            .map(|ip| IpNet::from(*ip))
            .collect()
    } else {
        configured
    };
    // Ranges inside loopback are dropped; wider ones (0.0.0.0/0) stay: the NodePort rules
    // themselves leave out loopback.
    let loopback = family.loopback();
    let kept: Vec<IpNet> = ranges
        .into_iter()
        .filter(|n| !loopback.contains(n))
        .collect();
    IpNet::aggregate(&kept)
}

/// The NodePort match: a local destination inside the NodePort ranges, not loopback.
fn nodeport_matches(family: Family) -> Vec<Match> {
    vec![
        Match::FibDaddrLocal,
        Match::DaddrNotIn(vec![family.loopback()]),
        Match::DaddrInSet(NODEPORT_IPS.to_owned()),
    ]
}

/// The fixed chains, sets and maps for `config`.
pub fn table(family: Family, config: &ProxyConfig) -> Table {
    let mark = config.masquerade_mark();
    let vmap = |map: &str| Rule::always(Action::VmapAddrProtoPort(map.to_owned()));
    let nodeport_vmap = |map: &str| {
        Rule::new(
            nodeport_matches(family),
            Action::VmapProtoPort(map.to_owned()),
        )
    };

    let mut cluster_ips_check = vec![Rule::new(
        vec![Match::DaddrInSet(CLUSTER_IPS.to_owned())],
        Action::Reject,
    )];
    let service_cidrs: Vec<IpNet> = config
        .service_cidrs
        .iter()
        .filter(|n| family.holds_net(n))
        .copied()
        .collect();
    if !service_cidrs.is_empty() {
        cluster_ips_check.push(Rule::new(
            vec![Match::DaddrIn(service_cidrs)],
            Action::Verdict(Verdict::Drop),
        ));
    }

    let chains = vec![
        // Source-range firewalling sees the pre-DNAT destination, so it runs before DNAT.
        base(
            "filter-prerouting",
            ChainType::Filter,
            Hook::Prerouting,
            FILTER_PRE_DNAT,
            vec![new_jump(FIREWALL_CHECK)],
        ),
        base(
            "filter-output",
            ChainType::Filter,
            Hook::Output,
            FILTER_PRE_DNAT,
            vec![new_jump(FIREWALL_CHECK)],
        ),
        // `reject` is not allowed in prerouting (before kernel 5.9), so the no-endpoint checks
        // run on input, forward and output; on output after DNAT, so that traffic the node
        // itself sends is short-circuited to endpoints first.
        base(
            "filter-input",
            ChainType::Filter,
            Hook::Input,
            FILTER_PRE_DNAT,
            vec![
                new_jump(NODEPORT_ENDPOINTS_CHECK),
                new_jump(SERVICE_ENDPOINTS_CHECK),
            ],
        ),
        base(
            "filter-forward",
            ChainType::Filter,
            Hook::Forward,
            FILTER_PRE_DNAT,
            vec![
                new_jump(SERVICE_ENDPOINTS_CHECK),
                new_jump(CLUSTER_IPS_CHECK),
            ],
        ),
        base(
            "filter-output-post-dnat",
            ChainType::Filter,
            Hook::Output,
            FILTER_POST_DNAT,
            vec![
                new_jump(SERVICE_ENDPOINTS_CHECK),
                new_jump(CLUSTER_IPS_CHECK),
            ],
        ),
        base(
            "nat-prerouting",
            ChainType::Nat,
            Hook::Prerouting,
            DSTNAT,
            vec![jump(SERVICES)],
        ),
        base(
            "nat-output",
            ChainType::Nat,
            Hook::Output,
            DSTNAT,
            vec![jump(SERVICES)],
        ),
        base(
            "nat-postrouting",
            ChainType::Nat,
            Hook::Postrouting,
            SRCNAT,
            vec![jump(MASQUERADING)],
        ),
        regular(FIREWALL_CHECK, vec![vmap(FIREWALL_IPS)]),
        regular(SERVICE_ENDPOINTS_CHECK, vec![vmap(NO_ENDPOINT_SERVICES)]),
        regular(
            NODEPORT_ENDPOINTS_CHECK,
            vec![nodeport_vmap(NO_ENDPOINT_NODEPORTS)],
        ),
        regular(CLUSTER_IPS_CHECK, cluster_ips_check),
        regular(
            SERVICES,
            vec![vmap(SERVICE_IPS), nodeport_vmap(SERVICE_NODEPORTS)],
        ),
        regular(
            MASQUERADING,
            vec![
                // Hairpin: a pod that reached itself through a Service would see its own
                // address as the source and answer itself directly; masquerade it. After DNAT
                // such a packet has source == destination, an endpoint of this node.
                Rule::new(
                    vec![
                        Match::CtStatusDnat,
                        Match::SaddrDaddrInSet(HAIRPIN_ENDPOINTS.to_owned()),
                    ],
                    Action::MarkSet(mark),
                ),
                Rule::new(
                    vec![Match::MarkClear(mark)],
                    Action::Verdict(Verdict::Return),
                ),
                Rule::always(Action::MarkToggle(mark)),
                Rule::always(Action::Masquerade {
                    fully_random: config.masquerade_fully_random,
                }),
            ],
        ),
        regular(
            MARK_FOR_MASQUERADE,
            vec![Rule::always(Action::MarkSet(mark))],
        ),
        regular(REJECT_CHAIN, vec![Rule::always(Action::Reject)]),
    ];

    let mut nodeport_ips = set(
        NODEPORT_IPS,
        KeyType::Net,
        SetKind::Set,
        "local addresses that accept NodePort traffic",
    );
    for net in nodeport_ranges(family, config) {
        nodeport_ips.elements.insert(ElemKey::Net(net), None);
    }
    let sets = vec![
        set(
            SERVICE_IPS,
            KeyType::AddrProtoPort,
            SetKind::VerdictMap,
            "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        ),
        set(
            SERVICE_NODEPORTS,
            KeyType::ProtoPort,
            SetKind::VerdictMap,
            "NodePort traffic",
        ),
        set(
            NO_ENDPOINT_SERVICES,
            KeyType::AddrProtoPort,
            SetKind::VerdictMap,
            "drop or reject traffic to services without endpoints",
        ),
        set(
            NO_ENDPOINT_NODEPORTS,
            KeyType::ProtoPort,
            SetKind::VerdictMap,
            "drop or reject traffic to NodePorts without endpoints",
        ),
        set(
            FIREWALL_IPS,
            KeyType::AddrProtoPort,
            SetKind::VerdictMap,
            "destinations subject to loadBalancerSourceRanges",
        ),
        set(
            CLUSTER_IPS,
            KeyType::Addr,
            SetKind::Set,
            "active ClusterIPs",
        ),
        set(
            HAIRPIN_ENDPOINTS,
            KeyType::AddrPair,
            SetKind::Set,
            "endpoints on this node, as source . destination of a pod reaching itself",
        ),
    ];
    let mut sets = sets;
    for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        for (entry, key, what) in [
            (
                Entry::Destination,
                KeyType::AddrProtoPortIndex,
                "destination",
            ),
            (Entry::NodePort, KeyType::ProtoPortIndex, "NodePort"),
        ] {
            let comment = format!("{} endpoints by {what} and index", proto.as_str());
            sets.push(set(
                &endpoint_map(entry, proto),
                key,
                SetKind::EndpointMap(proto),
                &comment,
            ));
        }
    }
    sets.push(nodeport_ips);

    let mut table = Table::new(family);
    table.chains = chains.into_iter().map(|c| (c.name.clone(), c)).collect();
    table.sets = sets.into_iter().map(|s| (s.def.name.clone(), s)).collect();
    table
}
