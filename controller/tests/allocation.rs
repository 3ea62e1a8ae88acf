//! The pure allocation parts: what a request asks for, what the book grants, what repair decides.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use serde_json::{Value, json};
use svcnet_allocator::PortRange;
use svcnet_controller::allocation::Family;
use svcnet_controller::allocation::book::{Book, Ranges};
use svcnet_controller::allocation::holders::Holders;
use svcnet_controller::allocation::plan::{Held, Want, patch_ops, plan};
use svcnet_controller::allocation::repair::{self, Memory};

fn service(spec: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": spec,
    }))
    .unwrap()
}

fn ranges(ips: &[&str], first: u16, last: u16) -> Ranges {
    Ranges {
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        ports: PortRange::new(first, last).unwrap(),
    }
}

fn dual() -> Book {
    Book::new(&ranges(&["10.96.0.0/16", "fd00:10:96::/108"], 30000, 32767)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Applies the patch the webhook would send, as the apiserver would.
fn patched(svc: &Service, ops: &[(String, Value)]) -> Service {
    let mut doc = serde_json::to_value(svc).unwrap();
    for (path, value) in ops {
        *doc.pointer_mut_or_create(path) = value.clone();
    }
    serde_json::from_value(doc).unwrap()
}

trait PointerCreate {
    fn pointer_mut_or_create(&mut self, path: &str) -> &mut Value;
}

impl PointerCreate for Value {
    fn pointer_mut_or_create(&mut self, path: &str) -> &mut Value {
        let mut at = self;
        for token in path.trim_start_matches('/').split('/') {
            at = match at {
                Value::Array(items) => &mut items[token.parse::<usize>().unwrap()],
                other => other
                    .as_object_mut()
                    .unwrap()
                    .entry(token)
                    .or_insert(Value::Null),
            };
        }
        at
    }
}

#[test]
fn a_cluster_ip_service_gets_one_address_of_the_primary_family() {
    let book = dual();
    let svc = service(json!({"ports": [{"port": 80}]}));
    let p = plan(&svc, None, &book.families()).unwrap();
    assert_eq!(p.ips, vec![(Family::V4, Want::Any)]);
    assert!(p.ports.is_empty());
    let (book, grant) = book.grant("demo/web", &p).unwrap();
    let ops = patch_ops(&p, &grant);
    let out = patched(&svc, &ops);
    let spec = out.spec.unwrap();
    assert_eq!(spec.cluster_ips.unwrap(), vec![grant.ips[0].to_string()]);
    assert_eq!(spec.ip_families.unwrap(), vec!["IPv4".to_owned()]);
    assert!(book.has(Held::Ip(grant.ips[0])));
    assert_eq!(book.pending()["demo/web"], vec![Held::Ip(grant.ips[0])]);
}

#[test]
fn dual_stack_policies_get_one_address_per_family() {
    let book = dual();
    let prefer = service(json!({"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}));
    let p = plan(&prefer, None, &book.families()).unwrap();
    assert_eq!(
        p.ips,
        vec![(Family::V4, Want::Any), (Family::V6, Want::Any)]
    );
    let (_, grant) = book.grant("demo/web", &p).unwrap();
    assert!(grant.ips[0].is_ipv4() && grant.ips[1].is_ipv6());

    let v6_first = service(json!({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6"]}));
    let p = plan(&v6_first, None, &book.families()).unwrap();
    assert_eq!(
        p.ips,
        vec![(Family::V6, Want::Any), (Family::V4, Want::Any)]
    );

    let v4_only = Book::new(&ranges(&["10.96.0.0/16"], 30000, 32767)).unwrap();
    let err = plan(&v6_first, None, &v4_only.families()).unwrap_err();
    assert!(err.0.contains("no IPv6 ClusterIP range"), "{err}");
    let p = plan(&prefer, None, &v4_only.families()).unwrap();
    assert_eq!(p.ips, vec![(Family::V4, Want::Any)]);
}

#[test]
fn user_chosen_values_are_reserved_and_taken_ones_denied() {
    let book = dual();
    let svc = service(json!({
        "type": "NodePort", "clusterIP": "10.96.0.10",
        "ports": [{"port": 80, "nodePort": 30080}],
    }));
    let p = plan(&svc, None, &book.families()).unwrap();
    assert_eq!(p.ips, vec![(Family::V4, Want::Specific(ip("10.96.0.10")))]);
    let (book, grant) = book.grant("demo/web", &p).unwrap();
    assert_eq!(grant.ports, vec![30080]);
    // The same request again (a retry) gets the same answer.
    let (_, again) = book.grant("demo/web", &p).unwrap();
    assert_eq!(again, grant);
    // Another Service asking for them is told why not.
    let err = book.grant("demo/other", &p).unwrap_err();
    assert_eq!(
        err.0,
        "spec.clusterIPs[0]: provided IP 10.96.0.10 is already allocated"
    );
    let only_port = plan(
        &service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})),
        None,
        &book.families(),
    )
    .unwrap();
    let err = book.grant("demo/other", &only_port).unwrap_err();
    assert_eq!(
        err.0,
        "spec.ports[0].nodePort: provided port 30080 is already allocated"
    );
    let outside = plan(
        &service(json!({"clusterIP": "10.97.0.1"})),
        None,
        &book.families(),
    )
    .unwrap();
    let err = book.grant("demo/other", &outside).unwrap_err();
    assert!(err.0.contains("is not in range 10.96.0.0/16"), "{err}");
}

#[test]
fn a_retried_create_gets_the_same_automatic_values() {
    let book = dual();
    let svc = service(json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}));
    let p = plan(&svc, None, &book.families()).unwrap();
    let (book, first) = book.grant("demo/web", &p).unwrap();
    let (book, second) = book.grant("demo/web", &p).unwrap();
    assert_eq!(first, second);
    assert_eq!(book.usage()[2].1, 2, "no new NodePorts were taken");
}

#[test]
fn ports_that_differ_only_in_protocol_share_a_node_port() {
    let book = dual();
    let svc = service(json!({"type": "NodePort", "ports": [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153},
    ]}));
    let p = plan(&svc, None, &book.families()).unwrap();
    assert_eq!(p.ports.len(), 2);
    let (_, grant) = book.grant("demo/web", &p).unwrap();
    let out = patched(&svc, &patch_ops(&p, &grant));
    let ports = out.spec.unwrap().ports.unwrap();
    assert_eq!(ports[0].node_port, ports[1].node_port);
    assert_ne!(ports[0].node_port, ports[2].node_port);
}

#[test]
fn load_balancers_with_local_policy_get_a_health_check_port() {
    let book = dual();
    let svc = service(
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    );
    let p = plan(&svc, None, &book.families()).unwrap();
    assert_eq!(p.ports.len(), 2);
    let (_, grant) = book.grant("demo/web", &p).unwrap();
    let out = patched(&svc, &patch_ops(&p, &grant)).spec.unwrap();
    assert!(out.health_check_node_port.is_some());
    assert_ne!(out.health_check_node_port, out.ports.unwrap()[0].node_port);

    let no_node_ports = service(
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    );
    assert!(
        plan(&no_node_ports, None, &book.families())
            .unwrap()
            .ports
            .is_empty()
    );
}

#[test]
fn headless_and_external_name_services_get_nothing() {
    let families = dual().families();
    let headless = service(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    assert!(plan(&headless, None, &families).unwrap().is_empty());
    let external = service(json!({"type": "ExternalName", "externalName": "example.com"}));
    assert!(plan(&external, None, &families).unwrap().is_empty());
}

#[test]
fn an_update_keeps_what_the_old_object_holds_and_allocates_what_is_new() {
    let families = dual().families();
    let old = service(json!({
        "type": "ClusterIP", "clusterIP": "10.96.5.5", "clusterIPs": ["10.96.5.5"],
        "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 80}],
    }));
    // Same Service, unchanged: nothing to do.
    assert!(plan(&old, Some(&old), &families).unwrap().is_empty());
    // To NodePort: one NodePort, the address kept.
    let mut to_node_port = old.clone();
    to_node_port.spec.as_mut().unwrap().type_ = Some("NodePort".into());
    let p = plan(&to_node_port, Some(&old), &families).unwrap();
    assert!(p.ips.is_empty());
    assert_eq!(p.ports.len(), 1);
    // A port added to a NodePort Service, the existing port left at 0 (inherits by name).
    let node_port_old = service(json!({
        "type": "NodePort", "clusterIP": "10.96.5.5",
        "ports": [{"name": "http", "port": 80, "nodePort": 30100}],
    }));
    let new = service(json!({
        "type": "NodePort", "clusterIP": "10.96.5.5",
        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
    }));
    let p = plan(&new, Some(&node_port_old), &families).unwrap();
    assert_eq!(p.ports.len(), 1, "{p:?}");
    assert_eq!(p.held, vec![Held::Ip(ip("10.96.5.5")), Held::Port(30100)]);
    // From SingleStack to PreferDualStack: the secondary address is added.
    let mut upgraded = old.clone();
    upgraded.spec.as_mut().unwrap().ip_family_policy = Some("PreferDualStack".into());
    upgraded.spec.as_mut().unwrap().ip_families = None;
    let p = plan(&upgraded, Some(&old), &families).unwrap();
    assert_eq!(p.kept_ips, vec![ip("10.96.5.5")]);
    assert_eq!(p.ips, vec![(Family::V6, Want::Any)]);
}

#[test]
fn an_update_never_reuses_a_value_the_service_already_holds() {
    // The create's NodePort is still pending (the leader has not seen the Service yet) when a port
    // is added: the new port must not get the old one's value.
    let book = dual();
    let created = service(json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}]}));
    let p = plan(&created, None, &book.families()).unwrap();
    let (book, grant) = book.grant("demo/web", &p).unwrap();
    let old = patched(&created, &patch_ops(&p, &grant));
    let mut new = old.clone();
    new.spec
        .as_mut()
        .unwrap()
        .ports
        .as_mut()
        .unwrap()
        .push(serde_json::from_value(json!({"name": "b", "port": 81})).unwrap());
    let p2 = plan(&new, Some(&old), &book.families()).unwrap();
    let (_, grant2) = book.grant("demo/web", &p2).unwrap();
    assert_ne!(grant2.ports[0], grant.ports[0]);
}

#[test]
fn full_ranges_give_a_clear_error() {
    let book = Book::new(&ranges(&["10.96.0.0/29"], 30000, 30015)).unwrap();
    let svc = service(json!({"type": "NodePort", "ports": [{"port": 80}]}));
    let mut book = book;
    for i in 0..6 {
        let p = plan(&svc, None, &book.families()).unwrap();
        book = book.grant(&format!("demo/s{i}"), &p).unwrap().0;
    }
    let p = plan(&svc, None, &book.families()).unwrap();
    let err = book.grant("demo/s7", &p).unwrap_err();
    assert!(
        err.0
            .starts_with("spec.clusterIPs[0]: no IPv4 ClusterIP is free"),
        "{err}"
    );
    let ports_only = Book::new(&ranges(&["10.96.0.0/16"], 30000, 30015)).unwrap();
    let mut book = ports_only;
    let many = service(
        json!({"type": "NodePort", "ports": (0..16).map(|i| json!({"port": 1000 + i})).collect::<Vec<_>>()}),
    );
    let p = plan(&many, None, &book.families()).unwrap();
    book = book.grant("demo/many", &p).unwrap().0;
    let err = book
        .grant(
            "demo/one-more",
            &plan(&svc, None, &book.families()).unwrap(),
        )
        .unwrap_err();
    assert!(
        err.0
            .starts_with("spec.ports[0].nodePort: no NodePort is free"),
        "{err}"
    );
}

#[test]
fn the_book_survives_persistence_and_range_changes() {
    let book = dual();
    let svc = service(
        json!({"type": "NodePort", "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}),
    );
    let p = plan(&svc, None, &book.families()).unwrap();
    let (book, grant) = book.grant("demo/web", &p).unwrap();
    let back = Book::from_spec(&book.to_spec()).unwrap();
    assert_eq!(back.to_spec(), book.to_spec());
    assert!(back.has(Held::Ip(grant.ips[1])));
    assert_eq!(back.pending(), book.pending());
    // Shrink the IPv4 range to one that holds none of the values: they are reported, not kept.
    let (shrunk, dropped) = back
        .with_ranges(&ranges(&["10.97.0.0/24", "fd00:10:96::/108"], 30000, 32767))
        .unwrap();
    assert_eq!(dropped, vec![Held::Ip(grant.ips[0])]);
    assert!(shrunk.has(Held::Ip(grant.ips[1])));
    assert!(shrunk.has(Held::Port(grant.ports[0])));
}

#[test]
fn repair_adopts_reports_and_releases_leaks_on_the_third_pass() {
    let mut book = dual();
    // A leak: reserved for a Service whose create failed.
    let p = plan(
        &service(json!({"ports": [{"port": 80}]})),
        None,
        &book.families(),
    )
    .unwrap();
    let (next, leaked) = book.grant("demo/failed", &p).unwrap();
    book = next;
    let mut holders = Holders::default();
    // Held but not allocated (the apiserver chose it while the webhook was down): adopted.
    holders.set("demo/a", vec![Held::Ip(ip("10.96.7.7")), Held::Port(30500)]);
    // Outside the ranges: reported.
    holders.set("demo/b", vec![Held::Ip(ip("10.100.0.1"))]);
    // Held twice: reported.
    holders.set("demo/c", vec![Held::Port(30500)]);
    let mut memory = Memory::default();

    let first = repair::pass(&book, &holders, &mut memory, 3);
    assert_eq!(
        first.adopt,
        vec![Held::Ip(ip("10.96.7.7")), Held::Port(30500)]
    );
    assert_eq!(
        first.out_of_range,
        vec![("demo/b".to_owned(), Held::Ip(ip("10.100.0.1")))]
    );
    assert_eq!(first.duplicates.len(), 1);
    assert!(first.release.is_empty());
    repair::apply(&mut book, &first);
    assert!(book.has(Held::Port(30500)));

    // The reservation is dropped on the third pass, which is also the first to count its value as a
    // leak; the value is released on the third pass that sees the leak.
    let mut released_on = None;
    for n in 2..=8 {
        let findings = repair::pass(&book, &holders, &mut memory, 3);
        repair::apply(&mut book, &findings);
        if findings.release.contains(&Held::Ip(leaked.ips[0])) {
            released_on = Some(n);
            break;
        }
    }
    assert_eq!(released_on, Some(5));
    assert!(!book.has(Held::Ip(leaked.ips[0])));
    assert!(book.pending().is_empty());
    assert!(book.has(Held::Ip(ip("10.96.7.7"))), "held values stay");
}

#[test]
fn repair_settles_a_reservation_once_its_service_is_seen() {
    let book = dual();
    let p = plan(
        &service(json!({"ports": [{"port": 80}]})),
        None,
        &book.families(),
    )
    .unwrap();
    let (mut book, grant) = book.grant("demo/web", &p).unwrap();
    let mut holders = Holders::default();
    holders.set("demo/web", vec![Held::Ip(grant.ips[0])]);
    let findings = repair::pass(&book, &holders, &mut Memory::default(), 3);
    assert!(findings.release.is_empty());
    repair::apply(&mut book, &findings);
    assert!(book.pending().is_empty());
    assert!(book.has(Held::Ip(grant.ips[0])));
}

#[test]
fn a_value_seen_on_a_service_leaves_every_reservation_and_is_adopted() {
    let book = dual();
    let p = plan(
        &service(json!({"type": "NodePort", "ports": [{"port": 80}]})),
        None,
        &book.families(),
    )
    .unwrap();
    let (mut book, grant) = book.grant("demo/late", &p).unwrap();
    // The apiserver gave that NodePort to another Service while the webhook was unreachable, and
    // chose an address svcnet had not handed out.
    let theirs = [Held::Port(grant.ports[0]), Held::Ip(ip("10.96.9.9"))];
    book.seen_held(&theirs);
    assert!(book.has(Held::Ip(ip("10.96.9.9"))));
    assert!(!book.pending()["demo/late"].contains(&Held::Port(grant.ports[0])));
    // A retry of the first request now gets another NodePort.
    let (_, again) = book.grant("demo/late", &p).unwrap();
    assert_ne!(again.ports[0], grant.ports[0]);
}
