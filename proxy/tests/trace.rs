//! Behaviour of the compiled ruleset, by tracing packets through it.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;
use svcnet_proxy::ir::{KeyType, SetKind};
use svcnet_proxy::names::endpoint_names;
use svcnet_proxy::testing::{Outcome, Packet, Tracer};
use svcnet_proxy::{ServiceState, TrafficPolicy, compile};

fn web() -> svcnet_proxy::State {
    with(
        state(),
        "web",
        ServiceState::cluster_ip(ip("10.96.0.10"), 80),
        vec![local_ep(5), remote_ep(7)],
    )
}

fn nodeport(policy: TrafficPolicy, eps: Vec<svcnet_proxy::EndpointState>) -> svcnet_proxy::State {
    let svc = ServiceState {
        node_port: Some(30080),
        external_traffic_policy: policy,
        ..ServiceState::cluster_ip(ip("10.96.0.20"), 80)
    };
    with(state(), "np", svc, eps)
}

#[test]
fn pod_to_cluster_ip_is_load_balanced_over_both_endpoints_without_masquerade() {
    let got = trace(&web(), &Packet::tcp(local_pod(9), ip("10.96.0.10"), 80));
    assert_eq!(
        got,
        vec![dnat(local_pod(5), false), dnat(remote_pod(7), false)]
    );
}

#[test]
fn node_process_to_cluster_ip_is_masqueraded() {
    let got = trace(
        &web(),
        &Packet::tcp(node_ip(), ip("10.96.0.10"), 80).from_local_process(),
    );
    assert_eq!(
        got,
        vec![dnat(local_pod(5), true), dnat(remote_pod(7), true)]
    );
}

#[test]
fn masquerade_all_masquerades_pod_traffic_too() {
    let mut state = web();
    state.config.masquerade_all = true;
    let got = trace(&state, &Packet::tcp(local_pod(9), ip("10.96.0.10"), 80));
    assert_eq!(
        got,
        vec![dnat(local_pod(5), true), dnat(remote_pod(7), true)]
    );
}

#[test]
fn pod_reaching_itself_through_its_service_is_masqueraded() {
    let state = with(
        state(),
        "web",
        ServiceState::cluster_ip(ip("10.96.0.10"), 80),
        vec![local_ep(5)],
    );
    let got = trace(&state, &Packet::tcp(local_pod(5), ip("10.96.0.10"), 80));
    assert_eq!(got, vec![dnat(local_pod(5), true)]);
}

#[test]
fn pod_to_cluster_ip_with_no_endpoints_is_rejected() {
    let state = with(
        state(),
        "empty",
        ServiceState::cluster_ip(ip("10.96.0.30"), 80),
        vec![],
    );
    assert_eq!(
        trace(&state, &Packet::tcp(local_pod(9), ip("10.96.0.30"), 80)),
        vec![Outcome::Reject]
    );
    let from_node = Packet::tcp(node_ip(), ip("10.96.0.30"), 80).from_local_process();
    assert_eq!(trace(&state, &from_node), vec![Outcome::Reject]);
}

#[test]
fn unknown_port_on_a_cluster_ip_is_rejected() {
    assert_eq!(
        trace(&web(), &Packet::tcp(local_pod(9), ip("10.96.0.10"), 81)),
        vec![Outcome::Reject]
    );
    assert_eq!(
        trace(
            &web(),
            &Packet::tcp(local_pod(9), ip("10.96.0.10"), 80).udp()
        ),
        vec![Outcome::Reject]
    );
}

#[test]
fn unallocated_address_in_the_service_range_is_dropped() {
    assert_eq!(
        trace(&web(), &Packet::tcp(local_pod(9), ip("10.96.7.7"), 80)),
        vec![Outcome::Drop]
    );
}

#[test]
fn traffic_for_no_service_is_untouched() {
    assert_eq!(
        trace(&web(), &Packet::tcp(local_pod(9), remote_pod(3), 80)),
        vec![Outcome::Accept]
    );
    assert_eq!(
        trace(&web(), &Packet::tcp(outside(), node_ip(), 22)),
        vec![Outcome::Accept]
    );
}

#[test]
fn outside_to_nodeport_with_cluster_policy_is_masqueraded() {
    let state = nodeport(TrafficPolicy::Cluster, vec![local_ep(6), remote_ep(8)]);
    let got = trace(&state, &Packet::tcp(outside(), node_ip(), 30080));
    assert_eq!(
        got,
        vec![dnat(local_pod(6), true), dnat(remote_pod(8), true)]
    );
}

#[test]
fn outside_to_nodeport_with_local_policy_preserves_client_ip() {
    let state = nodeport(TrafficPolicy::Local, vec![local_ep(6), remote_ep(8)]);
    assert_eq!(
        trace(&state, &Packet::tcp(outside(), node_ip(), 30080)),
        vec![dnat(local_pod(6), false)]
    );
}

#[test]
fn outside_to_nodeport_with_local_policy_on_node_without_endpoints_is_dropped() {
    let state = nodeport(TrafficPolicy::Local, vec![remote_ep(8)]);
    assert_eq!(
        trace(&state, &Packet::tcp(outside(), node_ip(), 30080)),
        vec![Outcome::Drop]
    );
}

#[test]
fn pods_and_the_node_reach_a_local_policy_nodeport_through_every_endpoint() {
    let state = nodeport(TrafficPolicy::Local, vec![remote_ep(8)]);
    assert_eq!(
        trace(&state, &Packet::tcp(local_pod(9), node_ip(), 30080)),
        vec![dnat(remote_pod(8), false)]
    );
    let from_node = Packet::tcp(node_ip(), node_ip(), 30080).from_local_process();
    assert_eq!(trace(&state, &from_node), vec![dnat(remote_pod(8), true)]);
}

#[test]
fn nodeport_with_no_endpoints_is_rejected() {
    let state = nodeport(TrafficPolicy::Cluster, vec![]);
    assert_eq!(
        trace(&state, &Packet::tcp(outside(), node_ip(), 30080)),
        vec![Outcome::Reject]
    );
}

#[test]
fn nodeport_answers_only_on_nodeport_addresses() {
    let mut state = nodeport(TrafficPolicy::Cluster, vec![remote_ep(8)]);
    let elsewhere = Packet {
        dst_is_local: true,
        ..Packet::tcp(outside(), ip("192.168.50.1"), 30080)
    };
    assert_eq!(trace(&state, &elsewhere), vec![Outcome::Accept]);
    state.config.node_port_addresses = vec![net("192.168.50.0/24")];
    assert_eq!(trace(&state, &elsewhere), vec![dnat(remote_pod(8), true)]);
    assert_eq!(
        trace(&state, &Packet::tcp(outside(), node_ip(), 30080)),
        vec![Outcome::Accept]
    );
}

#[test]
fn nodeport_addresses_of_everything_still_leave_out_loopback() {
    let mut state = nodeport(TrafficPolicy::Cluster, vec![remote_ep(8)]);
    state.config.node_port_addresses = vec![net("0.0.0.0/0")];
    assert_eq!(state.config.validate(), Ok(()));
    let loopback = Packet {
        dst_is_local: true,
        ..Packet::tcp(ip("127.0.0.1"), ip("127.0.0.1"), 30080)
    };
    assert_eq!(
        trace(&state, &loopback.from_local_process()),
        vec![Outcome::Accept]
    );
    assert_eq!(
        trace(&state, &Packet::tcp(outside(), node_ip(), 30080)),
        vec![dnat(remote_pod(8), true)]
    );
    state.config.node_port_addresses = vec![net("127.0.0.0/8")];
    assert!(state.config.validate().is_err());
}

#[test]
fn internal_local_policy_without_local_endpoints_drops_cluster_ip_traffic() {
    let svc = ServiceState {
        internal_traffic_policy: TrafficPolicy::Local,
        ..ServiceState::cluster_ip(ip("10.96.0.10"), 80)
    };
    let only_remote = with(state(), "web", svc.clone(), vec![remote_ep(7)]);
    assert_eq!(
        trace(
            &only_remote,
            &Packet::tcp(local_pod(9), ip("10.96.0.10"), 80)
        ),
        vec![Outcome::Drop]
    );
    let both = with(state(), "web", svc, vec![local_ep(5), remote_ep(7)]);
    assert_eq!(
        trace(&both, &Packet::tcp(local_pod(9), ip("10.96.0.10"), 80)),
        vec![dnat(local_pod(5), false)]
    );
}

#[test]
fn terminating_endpoints_are_used_only_when_none_is_ready() {
    let svc = ServiceState::cluster_ip(ip("10.96.0.60"), 80);
    let mixed = with(
        state(),
        "rollout",
        svc.clone(),
        vec![local_ep(11).terminating(), remote_ep(11)],
    );
    assert_eq!(
        trace(&mixed, &Packet::tcp(local_pod(9), ip("10.96.0.60"), 80)),
        vec![dnat(remote_pod(11), false)]
    );
    let draining = with(
        state(),
        "rollout",
        svc,
        vec![local_ep(11).terminating(), remote_ep(11).terminating()],
    );
    let got = trace(&draining, &Packet::tcp(local_pod(9), ip("10.96.0.60"), 80));
    assert_eq!(
        got,
        vec![dnat(local_pod(11), false), dnat(remote_pod(11), false)]
    );
}

#[test]
fn zone_hints_pick_same_zone_endpoints() {
    let eps = vec![
        local_ep(5).for_zone("zone-a"),
        remote_ep(7).for_zone("zone-b"),
        remote_ep(8).for_zone("zone-a"),
    ];
    let state = with(
        state(),
        "web",
        ServiceState::cluster_ip(ip("10.96.0.10"), 80),
        eps,
    );
    let got = trace(&state, &Packet::tcp(local_pod(9), ip("10.96.0.10"), 80));
    assert_eq!(
        got,
        vec![dnat(local_pod(5), false), dnat(remote_pod(8), false)]
    );
}

#[test]
fn client_ip_affinity_adds_a_dynamic_set_per_endpoint() {
    let svc = ServiceState {
        client_ip_affinity_timeout: Some(600),
        ..ServiceState::cluster_ip(ip("10.96.0.40"), 80)
    };
    let state = with(state(), "sticky", svc, vec![local_ep(7), remote_ep(9)]);
    let (_, committed) = compile(&state, None);
    let table = committed.table();
    for ep in [local_pod(7), remote_pod(9)] {
        let (chain, set) = endpoint_names(&key("sticky"), &ep, 8080);
        let def = &table.sets[&set].def;
        assert_eq!(
            (def.key, def.timeout_seconds, def.kind),
            (KeyType::Addr, Some(600), SetKind::Set)
        );
        assert!(
            table.chains[&chain]
                .rules
                .iter()
                .any(|r| r.set_refs() == vec![set.as_str()])
        );
    }
    let text = compile(&state, None).0.to_string();
    assert!(
        text.contains("flags dynamic,timeout ; timeout 600s ;"),
        "{text}"
    );
    assert!(text.contains("update @affinity-"), "{text}");
}

#[test]
fn client_ip_affinity_sticks_to_the_remembered_endpoint() {
    let svc = ServiceState {
        client_ip_affinity_timeout: Some(600),
        ..ServiceState::cluster_ip(ip("10.96.0.40"), 80)
    };
    let state = with(state(), "sticky", svc, vec![local_ep(7), remote_ep(9)]);
    let (nft, _, _) = applied(&state);
    let mut tracer = Tracer::new(nft.table().unwrap(), &state.config);
    let packet = Packet::tcp(local_pod(3), ip("10.96.0.40"), 80);
    assert_eq!(tracer.trace(&packet).len(), 2);
    let (_, set) = endpoint_names(&key("sticky"), &remote_pod(9), 8080);
    tracer.remember(&set, local_pod(3));
    assert_eq!(tracer.trace(&packet), vec![dnat(remote_pod(9), false)]);
}

fn lb() -> svcnet_proxy::State {
    let svc = ServiceState {
        node_port: Some(30443),
        external_ips: vec![ip("172.18.0.150")],
        load_balancer_ips: vec![ip("172.18.0.100")],
        load_balancer_source_ranges: vec![net("203.0.113.0/24")],
        ..ServiceState::cluster_ip(ip("10.96.0.50"), 443)
    };
    with(state(), "lb", svc, vec![remote_ep(10)])
}

#[test]
fn load_balancer_source_ranges_drop_other_sources() {
    assert_eq!(
        trace(&lb(), &Packet::tcp(outside(), ip("172.18.0.100"), 443)),
        vec![Outcome::Drop]
    );
    let allowed = Packet::tcp(ip("203.0.113.9"), ip("172.18.0.100"), 443);
    assert_eq!(trace(&lb(), &allowed), vec![dnat(remote_pod(10), true)]);
}

#[test]
fn source_ranges_do_not_apply_to_external_ips_or_nodeports() {
    assert_eq!(
        trace(&lb(), &Packet::tcp(outside(), ip("172.18.0.150"), 443)),
        vec![dnat(remote_pod(10), true)]
    );
    assert_eq!(
        trace(&lb(), &Packet::tcp(outside(), node_ip(), 30443)),
        vec![dnat(remote_pod(10), true)]
    );
}

#[test]
fn pod_to_load_balancer_ip_with_local_policy_is_short_circuited_to_every_endpoint() {
    let mut state = lb();
    let svc = state.services.get_mut(&key("lb")).unwrap();
    svc.external_traffic_policy = TrafficPolicy::Local;
    svc.load_balancer_source_ranges.clear();
    assert_eq!(
        trace(&state, &Packet::tcp(local_pod(9), ip("172.18.0.100"), 443)),
        vec![dnat(remote_pod(10), false)]
    );
    assert_eq!(
        trace(&state, &Packet::tcp(outside(), ip("172.18.0.100"), 443)),
        vec![Outcome::Drop]
    );
}
