//! How endpoints are laid out into slices: sizes, port sets, families, metadata, hints.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use support::*;
use svcnet_controller::endpointslice::{
    LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, Options, plan,
};

fn created(
    svc: &k8s_openapi::api::core::v1::Service,
    pods: &[svcnet_controller::endpointslice::PodView],
    max: usize,
) -> Vec<EndpointSlice> {
    let p = plan(svc, pods, &nodes(), &[], &opts(max));
    assert!(p.update.is_empty() && p.delete.is_empty());
    p.create
}

#[test]
fn two_hundred_fifty_pods_give_three_slices_of_at_most_100() {
    let slices = created(
        &service("web").port(80, 8080),
        &numbered_pods("web", 250),
        100,
    );
    assert_eq!(sizes(&slices), [50, 100, 100]);
}

#[test]
fn max_endpoints_per_slice_bounds_every_slice() {
    let svc = service("web").port(80, 8080);
    let pods = numbered_pods("web", 1200);
    let table: [(usize, usize, usize); 3] = [(1, 1200, 1), (7, 172, 7), (1000, 2, 1000)];
    for (max, want_slices, want_largest) in table {
        let slices = created(&svc, &pods, max);
        assert_eq!(slices.len(), want_slices, "max {max}");
        assert_eq!(
            sizes(&slices).last().copied(),
            Some(want_largest),
            "max {max}"
        );
        assert_eq!(sizes(&slices).iter().sum::<usize>(), 1200, "max {max}");
    }
}

#[test]
fn named_target_port_with_two_port_numbers_gives_one_slice_per_port_set() {
    let svc = service("web").named_port("http", 80, "http");
    let pods = vec![
        pod("old-1")
            .ip("10.244.1.1")
            .ready()
            .on("node-1")
            .container_port("http", 8080),
        pod("old-2")
            .ip("10.244.1.2")
            .ready()
            .on("node-1")
            .container_port("http", 8080),
        pod("new-1")
            .ip("10.244.2.1")
            .ready()
            .on("node-2")
            .container_port("http", 9090),
    ];
    let slices = created(&svc, &pods, 100);
    let mut layout: Vec<(Vec<i32>, usize)> = slices
        .iter()
        .map(|s| (port_numbers(s), endpoints(s).len()))
        .collect();
    layout.sort();
    assert_eq!(layout, [(vec![8080], 2), (vec![9090], 1)]);
    let port = &slices[0].ports.as_ref().expect("ports")[0];
    assert_eq!(port.name.as_deref(), Some("http"));
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
}

#[test]
fn pod_without_the_named_port_gets_a_port_set_without_that_port() {
    // Upstream getEndpointPorts skips a Service port the Pod can't resolve.
    let svc = service("web")
        .named_port("http", 80, "http")
        .named_port("metrics", 9100, "metrics");
    let pods = vec![
        pod("full")
            .ip("10.244.1.1")
            .ready()
            .on("node-1")
            .container_port("http", 8080)
            .container_port("metrics", 9100),
        pod("bare").ip("10.244.1.2").ready().on("node-1"),
    ];
    let slices = created(&svc, &pods, 100);
    let mut port_sets: Vec<Vec<i32>> = slices.iter().map(port_numbers).collect();
    port_sets.sort();
    assert_eq!(port_sets, [vec![], vec![8080, 9100]]);
}

#[test]
fn dual_stack_service_gets_one_slice_set_per_family() {
    let svc = service("web").port(80, 8080).dual_stack();
    let pods = vec![
        pod("a")
            .ip("10.244.1.1")
            .ip("fd00:10:244:1::1")
            .ready()
            .on("node-1"),
        pod("b")
            .ip("10.244.1.2")
            .ip("fd00:10:244:1::2")
            .ready()
            .on("node-1"),
        pod("v4-only").ip("10.244.1.3").ready().on("node-1"),
    ];
    let mut store = SliceStore::default();
    store.converge(&svc, &pods, &nodes(), &Options::default());
    let addresses = |family: &str| -> Vec<String> {
        store
            .slices_of(family)
            .iter()
            .flat_map(|s| endpoints(s))
            .flat_map(|e| e.addresses.clone())
            .collect()
    };
    assert_eq!(store.slices.len(), 2);
    assert_eq!(
        addresses("IPv4"),
        ["10.244.1.1", "10.244.1.2", "10.244.1.3"]
    );
    assert_eq!(addresses("IPv6"), ["fd00:10:244:1::1", "fd00:10:244:1::2"]);
}

#[test]
fn families_come_from_ip_families_else_cluster_ip_else_both() {
    let mut no_families = service("web");
    no_families.spec.as_mut().expect("spec").ip_families = None;
    let mut v6 = no_families.clone();
    v6.spec.as_mut().expect("spec").cluster_ip = Some("fd00:10:96::a".to_owned());
    let headless = no_families.clone().headless();
    let table = [
        (service("web"), vec!["IPv4"]),
        (service("web").dual_stack(), vec!["IPv4", "IPv6"]),
        (no_families, vec!["IPv4"]),
        (v6, vec!["IPv6"]),
        (headless, vec!["IPv4", "IPv6"]),
    ];
    for (svc, want) in table {
        // With no Pods, each family gets exactly its placeholder.
        let p = plan(&svc, &[], &nodes(), &[], &Options::default());
        let got: Vec<&str> = p.create.iter().map(|s| s.address_type.as_str()).collect();
        assert_eq!(
            got,
            want,
            "{:?}",
            svc.spec.as_ref().map(|s| (&s.cluster_ip, &s.ip_families))
        );
    }
}

#[test]
fn no_matching_pods_gives_one_placeholder_slice() {
    let p = plan(
        &service("web").port(80, 8080),
        &[],
        &nodes(),
        &[],
        &Options::default(),
    );
    assert_eq!(p.create.len(), 1);
    let placeholder = &p.create[0];
    assert_eq!(placeholder.address_type, "IPv4");
    assert_eq!(placeholder.ports.as_deref(), Some(&[][..]));
    assert!(endpoints(placeholder).is_empty());
}

#[test]
fn new_slices_carry_labels_owner_reference_and_generate_name() {
    let svc = service("web")
        .port(80, 8080)
        .label("team", "shop")
        .label(LABEL_SERVICE_NAME, "spoofed")
        .label(LABEL_MANAGED_BY, "spoofed")
        .label(LABEL_HEADLESS, "spoofed");
    let slices = created(&svc, &numbered_pods("web", 1), 100);
    let meta = &slices[0].metadata;
    assert_eq!(meta.generate_name.as_deref(), Some("web-"));
    assert_eq!(meta.name, None);
    assert_eq!(meta.namespace.as_deref(), Some(NAMESPACE));
    let labels = meta.labels.clone().expect("labels");
    let want = BTreeMap::from([
        ("team".to_owned(), "shop".to_owned()),
        (LABEL_SERVICE_NAME.to_owned(), "web".to_owned()),
        (LABEL_MANAGED_BY.to_owned(), "svcnet-controller".to_owned()),
    ]);
    assert_eq!(labels, want);
    let owners = meta.owner_references.clone().expect("owner references");
    assert_eq!(owners.len(), 1);
    let owner = &owners[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str()),
        ("v1", "Service")
    );
    assert_eq!(
        (owner.name.as_str(), owner.uid.as_str()),
        ("web", "uid-svc-web")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
}

#[test]
fn headless_service_slices_get_the_headless_label_and_pods_in_its_subdomain_get_hostnames() {
    let svc = service("db").headless().port(5432, 5432);
    let pods = vec![
        pod("db-0")
            .ip("10.244.1.1")
            .ready()
            .on("node-1")
            .hostname("db-0", "db"),
        pod("other")
            .ip("10.244.1.2")
            .ready()
            .on("node-1")
            .hostname("other", "elsewhere"),
        pod("plain").ip("10.244.1.3").ready().on("node-1"),
    ];
    let slices = created(&svc, &pods, 100);
    assert_eq!(slices.len(), 1);
    let labels = slices[0].metadata.labels.clone().expect("labels");
    assert_eq!(labels.get(LABEL_HEADLESS).map(String::as_str), Some(""));
    let hostname = |name: &str| find_endpoint(&slices, name).and_then(|(_, e)| e.hostname.clone());
    assert_eq!(hostname("db-0").as_deref(), Some("db-0"));
    assert_eq!(hostname("other"), None);
    assert_eq!(hostname("plain"), None);
}

#[test]
fn endpoints_carry_node_zone_and_target_ref() {
    let slices = created(
        &service("web").port(80, 8080),
        &[pod("web-1").ip("10.244.1.5").ready().on("node-2")],
        100,
    );
    let (_, ep) = find_endpoint(&slices, "web-1").expect("endpoint");
    assert_eq!(ep.addresses, ["10.244.1.5"]);
    assert_eq!(ep.node_name.as_deref(), Some("node-2"));
    assert_eq!(ep.zone.as_deref(), Some("zone-b"));
    let target = ep.target_ref.clone().expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(target.uid.as_deref(), Some("uid-pod-web-1"));
    assert_eq!(ep.hints, None, "no trafficDistribution, no hints");
}

#[test]
fn traffic_distribution_adds_hints_to_ready_endpoints() {
    let pods = vec![
        pod("ready").ip("10.244.1.1").ready().on("node-1"),
        pod("unready").ip("10.244.1.2").on("node-2"),
    ];
    let zones_and_nodes = |value: &str| {
        let slices = created(
            &service("web").port(80, 8080).traffic_distribution(value),
            &pods,
            100,
        );
        ["ready", "unready"].map(|name| {
            let hints = find_endpoint(&slices, name).and_then(|(_, e)| e.hints.clone());
            let zones: Vec<String> = hints
                .iter()
                .flat_map(|h| h.for_zones.iter().flatten())
                .map(|z| z.name.clone())
                .collect();
            let nodes: Vec<String> = hints
                .iter()
                .flat_map(|h| h.for_nodes.iter().flatten())
                .map(|n| n.name.clone())
                .collect();
            (zones, nodes)
        })
    };
    let none = (vec![], vec![]);
    let zone_a = (vec!["zone-a".to_owned()], vec![]);
    assert_eq!(
        zones_and_nodes("PreferClose"),
        [zone_a.clone(), none.clone()]
    );
    assert_eq!(zones_and_nodes("PreferSameZone"), [zone_a, none.clone()]);
    assert_eq!(
        zones_and_nodes("PreferSameNode"),
        [
            (vec!["zone-a".to_owned()], vec!["node-1".to_owned()]),
            none.clone()
        ]
    );
    assert_eq!(zones_and_nodes("SomethingNew"), [none.clone(), none]);
}

#[test]
fn same_input_in_any_pod_order_gives_the_same_plan() {
    let svc = service("web")
        .port(80, 8080)
        .named_port("metrics", 9100, "metrics");
    let pods = numbered_pods("web", 120);
    let mut reversed = pods.clone();
    reversed.reverse();
    let a = plan(&svc, &pods, &nodes(), &[], &opts(50));
    let b = plan(&svc, &reversed, &nodes(), &[], &opts(50));
    assert_eq!(a, b);
    for slice in &a.create {
        let keys: Vec<&Vec<String>> = endpoints(slice).iter().map(|e| &e.addresses).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "endpoints are sorted");
    }
}
