//! The chains, sets and map elements of one service port (kube-proxy's per-service part of
//! `syncProxyRules`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::base::{
    CLUSTER_IPS, FIREWALL_IPS, HAIRPIN_ENDPOINTS, LOCAL_INDEX_OFFSET, MARK_FOR_MASQUERADE,
    NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, REJECT_CHAIN, SERVICE_IPS, SERVICE_NODEPORTS,
    SHARED_SPREAD_MAX, Spread, endpoint_map, spread_rules,
};
use crate::endpoints::{self, uses_cluster_endpoints, uses_local_endpoints};
use crate::ir::{
    Action, Chain, ElemKey, Entry, KeyType, Match, Rule, SetDef, SetKind, Value, Verdict,
};
use crate::model::{
    EndpointState, Family, LoadBalancing, Protocol, ProxyConfig, ServiceKey, ServiceState,
    TrafficPolicy,
};
use crate::names::{ServiceNames, endpoint_names};

/// What one service port owns in the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    pub chains: BTreeMap<String, Chain>,
    /// Affinity sets.
    pub sets: BTreeMap<String, SetDef>,
    /// Elements it wants in the shared sets and maps, keyed by (set, key). When two service
    /// ports want the same key, the first in key order gets it (see `Claims`).
    pub elements: BTreeMap<(String, ElemKey), Option<Value>>,
    /// The shared load-balancing chains it goes to.
    pub shared: BTreeSet<Spread>,
}

impl Fragment {
    fn chain(&mut self, name: &str) -> &mut Vec<Rule> {
        &mut self
            .chains
            .entry(name.to_owned())
            .or_insert_with(|| Chain {
                name: name.to_owned(),
                base: None,
                rules: Vec::new(),
            })
            .rules
    }

    fn claim(&mut self, set: &str, key: ElemKey, value: Option<Verdict>) {
        self.claim_value(set, key, value.map(Value::Verdict));
    }

    fn claim_value(&mut self, set: &str, key: ElemKey, value: Option<Value>) {
        self.elements.entry((set.to_owned(), key)).or_insert(value);
    }
}

fn goto(chain: &str) -> Verdict {
    Verdict::Goto(chain.to_owned())
}

fn jump_masq() -> Action {
    Action::Verdict(Verdict::Jump(MARK_FOR_MASQUERADE.to_owned()))
}

/// Endpoints of `family`, one per (ip, port), sorted: the order numgen indexes into.
pub fn usable_endpoints(family: Family, endpoints: &[EndpointState]) -> Vec<EndpointState> {
    let mut eps: Vec<EndpointState> = endpoints
        .iter()
        .filter(|ep| family.holds(&ep.ip))
        .cloned()
        .collect();
    eps.sort_by_key(|ep| (ep.ip, ep.port));
    eps.dedup_by_key(|ep| (ep.ip, ep.port));
    eps
}

/// Compile one service port; `None` when it has no ClusterIP of this family (nothing to do).
pub fn compile(
    family: Family,
    config: &ProxyConfig,
    key: &ServiceKey,
    svc: &ServiceState,
    endpoints: &[EndpointState],
) -> Option<Fragment> {
    let cluster_ip = *svc.cluster_ips.iter().find(|ip| family.holds(ip))?;
    let proto = key.protocol;
    let eps = usable_endpoints(family, endpoints);
    let sel = endpoints::select(&eps, svc, config);
    let names = ServiceNames::new(key);
    let mut frag = Fragment::default();

    let internal_local = svc.internal_traffic_policy == TrafficPolicy::Local;
    let external_local = svc.external_traffic_policy == TrafficPolicy::Local;
    let uses_cluster_chain = !sel.cluster.is_empty() && uses_cluster_endpoints(svc);
    let uses_local_chain = !sel.local.is_empty() && uses_local_endpoints(svc);
    let internal_chain = if internal_local {
        &names.local
    } else {
        &names.cluster
    };
    let has_internal = sel.has_any && (!internal_local || uses_local_chain);
    let external_policy_chain = if external_local {
        &names.local
    } else {
        &names.cluster
    };
    let has_external = sel.has_any && (!external_local || uses_local_chain);
    // Needed even without external endpoints: it short-circuits pods and the node itself.
    let uses_external_chain = sel.has_any && svc.externally_accessible();

    let reject = goto(REJECT_CHAIN);
    let internal_filter = if sel.has_any {
        Verdict::Drop
    } else {
        reject.clone()
    };
    let external_filter = if sel.has_any { Verdict::Drop } else { reject };

    let ext_ips: Vec<IpAddr> = svc
        .external_ips
        .iter()
        .filter(|ip| family.holds(ip))
        .copied()
        .collect();
    let lb_ips: Vec<IpAddr> = svc
        .load_balancer_ips
        .iter()
        .filter(|ip| family.holds(ip))
        .copied()
        .collect();
    let ranges: Vec<IpNet> = svc
        .load_balancer_source_ranges
        .iter()
        .filter(|n| family.holds_net(n))
        .copied()
        .collect();
    let cluster_cidrs: Vec<IpNet> = config
        .cluster_cidrs
        .iter()
        .filter(|n| family.holds_net(n))
        .copied()
        .collect();
    let addr_key = |ip: IpAddr| ElemKey::AddrProtoPort(ip, proto, svc.port);

    // ClusterIP.
    frag.claim(CLUSTER_IPS, ElemKey::Addr(cluster_ip), None);
    if has_internal {
        frag.claim(
            SERVICE_IPS,
            addr_key(cluster_ip),
            Some(goto(internal_chain)),
        );
    } else {
        frag.claim(
            NO_ENDPOINT_SERVICES,
            addr_key(cluster_ip),
            Some(internal_filter),
        );
    }

    // External IPs and load-balancer IPs.
    for ip in ext_ips.iter().chain(&lb_ips) {
        if sel.has_any {
            frag.claim(SERVICE_IPS, addr_key(*ip), Some(goto(&names.external)));
        }
        if !has_external {
            frag.claim(
                NO_ENDPOINT_SERVICES,
                addr_key(*ip),
                Some(external_filter.clone()),
            );
        }
    }

    // loadBalancerSourceRanges.
    if !lb_ips.is_empty() && !ranges.is_empty() {
        let mut allowed = ranges.clone();
        // A VIP bound locally loops node traffic back with the VIP as source: allow it when the
        // node itself is inside the ranges.
        if config
            .node_ips
            .iter()
            .any(|ip| ranges.iter().any(|r| r.contains(ip)))
        {
            allowed.extend(lb_ips.iter().map(|ip| IpNet::from(*ip)));
        }
        frag.chain(&names.firewall).push(Rule::new(
            vec![Match::SaddrNotIn(IpNet::aggregate(&allowed))],
            Action::Verdict(Verdict::Drop),
        ));
        for ip in &lb_ips {
            frag.claim(FIREWALL_IPS, addr_key(*ip), Some(goto(&names.firewall)));
        }
    }

    // NodePort.
    if let Some(node_port) = svc.node_port {
        let np_key = ElemKey::ProtoPort(proto, node_port);
        if sel.has_any {
            frag.claim(
                SERVICE_NODEPORTS,
                np_key.clone(),
                Some(goto(&names.external)),
            );
        }
        if !has_external {
            frag.claim(NO_ENDPOINT_NODEPORTS, np_key, Some(external_filter));
        }
    }

    // Masquerading of ClusterIP traffic: all of it, or what comes from outside the pod ranges.
    if has_internal {
        let mut matches = vec![Match::Daddr(cluster_ip), Match::Dport(proto, svc.port)];
        if config.masquerade_all {
            frag.chain(internal_chain)
                .push(Rule::new(matches, jump_masq()));
        } else if !cluster_cidrs.is_empty() {
            matches.push(Match::SaddrNotIn(cluster_cidrs.clone()));
            frag.chain(internal_chain)
                .push(Rule::new(matches, jump_masq()));
        }
    }

    // External traffic.
    if uses_external_chain {
        let rules = frag.chain(&names.external);
        if !external_local {
            // Endpoints may be on other nodes: masquerade so replies come back here.
            rules.push(Rule::always(jump_masq()));
        } else if uses_cluster_chain {
            if !cluster_cidrs.is_empty() {
                // Pods reaching an external address act as if they went out and came back in:
                // no traffic policy applies.
                rules.push(Rule::new(
                    vec![Match::SaddrIn(cluster_cidrs.clone())],
                    Action::Verdict(goto(&names.cluster)),
                ));
            }
            // The node's own traffic has a local address (often the VIP) as source: masquerade
            // it and let it use every endpoint.
            rules.push(Rule::new(vec![Match::FibSaddrLocal], jump_masq()));
            rules.push(Rule::new(
                vec![Match::FibSaddrLocal],
                Action::Verdict(goto(&names.cluster)),
            ));
        }
        if has_external {
            rules.push(Rule::always(Action::Verdict(goto(external_policy_chain))));
        }
    }

    // Hairpin: only a pod on this node can reach itself through this node's rules; endpoints
    // whose node is unknown (user-written slices) might be here too.
    for ep in &sel.reachable {
        if ep
            .node_name
            .as_deref()
            .is_none_or(|n| n == config.node_name)
        {
            frag.claim(HAIRPIN_ENDPOINTS, ElemKey::AddrPair(ep.ip, ep.ip), None);
        }
    }

    // Policy chains end in load balancing. The endpoint maps list a chain's endpoints under
    // every destination whose packets can reach it: pods and the node reach the Cluster chain
    // from external destinations even with policy Local.
    let externals: Vec<IpAddr> = if uses_external_chain {
        ext_ips.iter().chain(&lb_ips).copied().collect()
    } else {
        Vec::new()
    };
    let policy_chains = [
        (uses_cluster_chain, &names.cluster, &sel.cluster, false),
        (uses_local_chain, &names.local, &sel.local, true),
    ];
    for (used, chain, members, local) in policy_chains {
        if !used {
            continue;
        }
        match svc.client_ip_affinity_timeout {
            None => {
                let mut entries = Entries::default();
                if internal_local == local {
                    entries.addrs.push(cluster_ip);
                }
                if !local || external_local {
                    entries.addrs.extend(&externals);
                    entries.node_port = svc.node_port.filter(|_| uses_external_chain);
                }
                spread(&mut frag, chain, key, svc, members, &entries, local);
            }
            Some(timeout) => sticky(&mut frag, key, proto, svc, chain, members, timeout),
        }
    }
    Some(frag)
}

/// The destinations that lead to one policy chain.
#[derive(Default)]
struct Entries {
    addrs: Vec<IpAddr>,
    node_port: Option<u16>,
}

/// Load balancing and DNAT: nothing per endpoint needs a chain of its own. A destination's
/// endpoints are elements of the shared endpoint maps, keyed by the destination and the index the
/// DNAT rule picks; the rules are those of a shared chain when one fits (see `Spread`).
fn spread(
    frag: &mut Fragment,
    chain: &str,
    key: &ServiceKey,
    svc: &ServiceState,
    members: &[&EndpointState],
    entries: &Entries,
    local: bool,
) {
    let proto = key.protocol;
    if let [only] = members {
        let action = Action::Dnat {
            addr: only.ip,
            port: only.port,
        };
        frag.chain(chain)
            .push(Rule::new(vec![Match::L4Proto(proto)], action));
        return;
    }
    let offset = if local { LOCAL_INDEX_OFFSET } else { 0 };
    let indexed = || {
        members
            .iter()
            .zip(offset..)
            .map(|(ep, i)| (i, Some(Value::Target(ep.ip, ep.port))))
    };
    for addr in &entries.addrs {
        for (i, target) in indexed() {
            let elem = ElemKey::AddrProtoPortIndex(*addr, proto, svc.port, i);
            frag.claim_value(&endpoint_map(Entry::Destination, proto), elem, target);
        }
    }
    if let Some(node_port) = entries.node_port {
        for (i, target) in indexed() {
            let elem = ElemKey::ProtoPortIndex(proto, node_port, i);
            frag.claim_value(&endpoint_map(Entry::NodePort, proto), elem, target);
        }
    }
    let (mode, count) = (svc.load_balancing, members.len());
    if mode != LoadBalancing::RoundRobin && count <= SHARED_SPREAD_MAX {
        let shared = Spread {
            proto,
            mode,
            count,
            local,
        };
        let goto = Verdict::Goto(shared.chain_name());
        frag.chain(chain).push(Rule::always(Action::Verdict(goto)));
        frag.shared.insert(shared);
    } else {
        frag.chain(chain)
            .extend(spread_rules(proto, mode, count, local));
    }
}

/// ClientIP affinity: each endpoint remembers its clients in a set of its own, so each gets a
/// chain (record the client, then DNAT), and the policy chain first sends known clients back.
fn sticky(
    frag: &mut Fragment,
    key: &ServiceKey,
    proto: Protocol,
    svc: &ServiceState,
    chain: &str,
    members: &[&EndpointState],
    timeout: u32,
) {
    let targets: Vec<(String, String)> = members
        .iter()
        .map(|ep| endpoint_names(key, &ep.ip, ep.port))
        .collect();
    for (ep, (ep_chain, set)) in members.iter().zip(&targets) {
        let def = SetDef {
            name: set.clone(),
            key: KeyType::Addr,
            kind: SetKind::Set,
            timeout_seconds: Some(timeout),
            comment: None,
        };
        frag.sets.insert(set.clone(), def);
        // The Cluster and Local chains may share an endpoint: its chain is written once.
        if frag.chains.contains_key(ep_chain) {
            continue;
        }
        let rules = frag.chain(ep_chain);
        rules.push(Rule::always(Action::RememberSaddr(set.clone())));
        rules.push(Rule::new(
            vec![Match::L4Proto(proto)],
            Action::Dnat {
                addr: ep.ip,
                port: ep.port,
            },
        ));
    }
    let rules = frag.chain(chain);
    for (ep_chain, set) in &targets {
        rules.push(Rule::new(
            vec![Match::SaddrInSet(set.clone())],
            Action::Verdict(goto(ep_chain)),
        ));
    }
    let action = match targets.as_slice() {
        [(only, _)] => Action::Verdict(goto(only)),
        _ => Action::LoadBalance {
            mode: svc.load_balancing,
            targets: targets.into_iter().map(|(c, _)| c).collect(),
        },
    };
    rules.push(Rule::always(action));
}
