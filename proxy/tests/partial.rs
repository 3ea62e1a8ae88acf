//! Partial syncs: small, ordered so nft accepts them, and equivalent to a full sync.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::IpAddr;

use support::*;
use svcnet_proxy::names::ServiceNames;
use svcnet_proxy::testing::FakeNft;
use svcnet_proxy::{
    EndpointState, ServiceState, State, Transaction, compile, compile_changed, compile_from,
};

fn thousand_services() -> State {
    let mut state = state();
    for i in 0..1000u16 {
        let name = format!("svc-{i}");
        let cip = IpAddr::from([10, 96, (i / 250) as u8 + 1, (i % 250) as u8 + 1]);
        let eps = vec![
            local_ep((i % 200) as u8 + 1),
            remote_ep((i % 200) as u8 + 1),
        ];
        state = with(
            state,
            &name,
            ServiceState {
                node_port: Some(30000 + i),
                ..ServiceState::cluster_ip(cip, 80)
            },
            eps,
        );
    }
    state
}

fn assert_stays_in_our_table(tx: &Transaction) {
    let text = tx.to_string();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (_verb, _object, family, table) =
            (words.next(), words.next(), words.next(), words.next());
        assert_eq!((family, table), (Some("ip"), Some("svcnet")), "{line}");
    }
    assert!(
        !text.contains("flush table") && !text.contains("delete table"),
        "{text}"
    );
}

#[test]
fn an_unchanged_state_compiles_to_an_empty_transaction() {
    let state = thousand_services();
    let (_, committed) = compile(&state, None);
    let (tx, again) = compile(&state, Some(&committed));
    assert!(tx.is_empty(), "{tx}");
    assert_eq!(again, committed);
}

#[test]
fn changing_one_endpoint_of_one_of_a_thousand_services_touches_only_that_service() {
    let state = thousand_services();
    let (_, committed) = compile(&state, None);
    let mut next = state.clone();
    next.endpoints.get_mut(&key("svc-500")).unwrap()[1] =
        EndpointState::ready(remote_pod(250), 8080, OTHER_NODE);
    let (tx, _) = compile(&next, Some(&committed));
    let text = tx.to_string();
    assert!(tx.len() < 30, "{} lines:\n{text}", tx.len());
    assert!(!tx.full);
    assert_stays_in_our_table(&tx);
    // No rule changes: the endpoint maps' elements under svc-500's ClusterIP and NodePort do.
    for line in text.lines() {
        assert!(
            line.contains(" element ")
                && (line.contains("{ 10.96.3.1 . tcp . 80 . ")
                    || line.contains("{ tcp . 30500 . ")),
            "touches a rule or another service: {line}"
        );
    }
    assert!(text.contains("10.244.2.250 . 8080"), "{text}");
    // One element out and one in, under the ClusterIP and under the NodePort.
    assert!(tx.len() <= 4, "{} lines:\n{text}", tx.len());
}

#[test]
fn compiling_only_the_ports_that_changed_gives_the_same_transaction() {
    let state = thousand_services();
    let (_, committed) = compile(&state, None);
    let mut next = state.clone();
    next.endpoints.get_mut(&key("svc-500")).unwrap()[1] =
        EndpointState::ready(remote_pod(250), 8080, OTHER_NODE);
    next.services.remove(&key("svc-7"));
    next.endpoints.remove(&key("svc-7"));
    let changed = [key("svc-500"), key("svc-7")].into_iter().collect();
    let (tx, after) = compile_changed(&next, Some(committed.clone()), &changed);
    assert_eq!((tx, after), compile_from(&next, Some(committed)));
}

#[test]
fn a_shared_chain_lives_while_a_service_uses_it() {
    let svc = ServiceState::cluster_ip(ip("10.96.0.10"), 80);
    let state = with(
        support::state(),
        "web",
        svc.clone(),
        vec![local_ep(5), remote_ep(7)],
    );
    let (full, committed) = compile(&state, None);
    assert!(
        full.to_string()
            .contains("add chain ip svcnet spread-tcp-random-2\n")
    );
    assert!(
        !full.to_string().contains("spread-tcp-random-3"),
        "only the chains in use"
    );
    let scaled = with(
        state,
        "web",
        svc,
        vec![local_ep(5), remote_ep(7), remote_ep(8)],
    );
    let (tx, _) = compile(&scaled, Some(&committed));
    let text = tx.to_string();
    assert!(
        text.contains("add chain ip svcnet spread-tcp-random-3\n"),
        "{text}"
    );
    assert!(
        text.contains("delete chain ip svcnet spread-tcp-random-2\n"),
        "{text}"
    );
    let mut nft = FakeNft::new();
    nft.apply(&full).unwrap();
    nft.apply(&tx).unwrap();
}

#[test]
fn removing_a_service_deletes_its_chains_and_map_elements() {
    let state = thousand_services();
    let (full, committed) = compile(&state, None);
    let mut next = state.clone();
    next.services.remove(&key("svc-7"));
    next.endpoints.remove(&key("svc-7"));
    let (tx, _) = compile(&next, Some(&committed));
    let text = tx.to_string();
    assert_stays_in_our_table(&tx);
    let names = ServiceNames::new(&key("svc-7"));
    assert!(
        text.contains(&format!("delete chain ip svcnet {}\n", names.cluster)),
        "{text}"
    );
    assert!(
        text.contains(&format!("delete chain ip svcnet {}\n", names.external)),
        "{text}"
    );
    assert!(
        text.contains("delete element ip svcnet service-ips { 10.96.1.8 . tcp . 80 }"),
        "{text}"
    );
    assert!(
        text.contains("delete element ip svcnet service-nodeports { tcp . 30007 }"),
        "{text}"
    );
    assert!(
        text.contains("delete element ip svcnet cluster-ips { 10.96.1.8 }"),
        "{text}"
    );
    // Elements go before the chains they point to.
    let first_delete_chain = text.find("delete chain").unwrap();
    assert!(text.rfind("delete element").unwrap() < first_delete_chain);

    let mut nft = FakeNft::new();
    nft.apply(&full).unwrap();
    nft.apply(&tx).unwrap_or_else(|e| panic!("{e}\n{tx}"));
    assert_eq!(nft.table().unwrap(), &compile(&next, None).1.table());
}

#[test]
fn a_config_change_falls_back_to_a_full_sync() {
    let state = thousand_services();
    let (_, committed) = compile(&state, None);
    let mut next = state.clone();
    next.config.masquerade_all = true;
    let (tx, _) = compile(&next, Some(&committed));
    assert!(tx.full);
    assert!(tx.to_string().starts_with("add table ip svcnet"));
}

#[test]
fn a_shared_external_ip_passes_to_the_next_service_when_its_owner_goes_away() {
    let shared = |cip: &str| ServiceState {
        external_ips: vec![ip("172.18.0.150")],
        ..ServiceState::cluster_ip(ip(cip), 80)
    };
    let state = with(
        with(state(), "a", shared("10.96.0.1"), vec![remote_ep(1)]),
        "b",
        shared("10.96.0.2"),
        vec![remote_ep(2)],
    );
    let (nft, committed, full) = applied(&state);
    assert_eq!(
        full.to_string().matches("172.18.0.150 . tcp . 80").count(),
        1
    );
    drop(nft);
    let mut next = state.clone();
    next.services.remove(&key("a"));
    let (tx, _) = compile(&next, Some(&committed));
    let b = ServiceNames::new(&key("b"));
    assert!(
        tx.to_string().contains(&format!(
            "add element ip svcnet service-ips {{ 172.18.0.150 . tcp . 80 : goto {} }}",
            b.external
        )),
        "{tx}"
    );
}

#[test]
fn an_affinity_timeout_change_recreates_the_sets_and_rewrites_their_chains() {
    let svc = |timeout| ServiceState {
        client_ip_affinity_timeout: Some(timeout),
        ..ServiceState::cluster_ip(ip("10.96.0.40"), 80)
    };
    let state = with(state(), "sticky", svc(600), vec![local_ep(7), remote_ep(9)]);
    let (mut nft, committed, _) = applied(&state);
    let next = with(
        state.clone(),
        "sticky",
        svc(60),
        vec![local_ep(7), remote_ep(9)],
    );
    let (tx, _) = compile(&next, Some(&committed));
    nft.apply(&tx).unwrap_or_else(|e| panic!("{e}\n{tx}"));
    assert_eq!(nft.table().unwrap(), &compile(&next, None).1.table());
}

#[test]
fn random_changes_synced_partially_end_in_the_same_table_as_a_full_sync() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut state = state();
    let (full, mut committed) = compile(&state, None);
    let mut nft = FakeNft::new();
    nft.apply(&full).unwrap();
    for step in 0..300 {
        state = random_change(&mut rng, state);
        let (tx, next) = compile(&state, Some(&committed));
        assert_stays_in_our_table(&tx);
        nft.apply(&tx)
            .unwrap_or_else(|e| panic!("step {step}: {e}\n{tx}"));
        let expected = compile(&state, None).1.table();
        assert_eq!(nft.table().unwrap(), &expected, "step {step}:\n{tx}");
        committed = next;
    }
}

#[test]
fn the_fake_nft_refuses_what_the_kernel_refuses() {
    let state = with(
        state(),
        "web",
        ServiceState::cluster_ip(ip("10.96.0.10"), 80),
        vec![remote_ep(1)],
    );
    let (mut nft, _, _) = applied(&state);
    let names = ServiceNames::new(&key("web"));
    let mut tx = Transaction::new(state.family, false);
    tx.ops
        .push(svcnet_proxy::Op::FlushChain(names.cluster.clone()));
    tx.ops
        .push(svcnet_proxy::Op::DeleteChain(names.cluster.clone()));
    let err = nft.apply(&tx).unwrap_err();
    assert!(err.to_string().contains("chain is in use"), "{err}");
    // Nothing of a refused transaction stays.
    assert_eq!(nft.table().unwrap(), &compile(&state, None).1.table());
}
