//! Which Pods become endpoints, and with which conditions.

mod support;

use support::*;
use svcnet_controller::endpointslice::{Options, PodView, plan};

fn endpoints_of(
    svc: &k8s_openapi::api::core::v1::Service,
    pods: &[PodView],
) -> Vec<k8s_openapi::api::discovery::v1::EndpointSlice> {
    plan(svc, pods, &nodes(), &[], &Options::default()).create
}

#[test]
fn conditions_follow_readiness_and_termination() {
    // (ready pod, terminating) -> (ready, serving, terminating); upstream podToEndpoint.
    let table = [
        (true, false, (Some(true), Some(true), Some(false))),
        (false, false, (Some(false), Some(false), Some(false))),
        (true, true, (Some(false), Some(true), Some(true))),
        (false, true, (Some(false), Some(false), Some(true))),
    ];
    for (ready, terminating, want) in table {
        let mut p = pod("p").ip("10.244.1.1").on("node-1");
        p.ready = ready;
        p.terminating = terminating;
        let slices = endpoints_of(&service("web").port(80, 8080), &[p]);
        let (_, ep) = find_endpoint(&slices, "p").expect("terminating pods stay");
        assert_eq!(
            conditions(ep),
            want,
            "ready={ready} terminating={terminating}"
        );
    }
}

#[test]
fn publish_not_ready_addresses_makes_every_endpoint_ready() {
    let svc = service("web").port(80, 8080).publish_not_ready();
    let pods = [
        pod("unready").ip("10.244.1.1").on("node-1"),
        pod("leaving")
            .ip("10.244.1.2")
            .ready()
            .terminating()
            .on("node-1"),
    ];
    let slices = endpoints_of(&svc, &pods);
    let cond = |name: &str| conditions(find_endpoint(&slices, name).expect("endpoint").1);
    // ready is forced; serving and terminating still tell the truth.
    assert_eq!(cond("unready"), (Some(true), Some(false), Some(false)));
    assert_eq!(cond("leaving"), (Some(true), Some(true), Some(true)));
}

#[test]
fn finished_pods_and_pods_without_an_ip_are_left_out() {
    let pods = [
        pod("done").ip("10.244.1.1").ready().on("node-1").finished(),
        pod("pending").on("node-1"),
        pod("running").ip("10.244.1.3").ready().on("node-1"),
    ];
    let slices = endpoints_of(&service("web").port(80, 8080), &pods);
    assert!(find_endpoint(&slices, "done").is_none());
    assert!(find_endpoint(&slices, "pending").is_none());
    assert!(find_endpoint(&slices, "running").is_some());
}

#[test]
fn pods_without_an_ip_of_the_family_are_left_out_of_that_family() {
    let svc = service("web").port(80, 8080).dual_stack();
    let slices = endpoints_of(&svc, &[pod("v6").ip("fd00:10:244::5").ready().on("node-1")]);
    let v4: Vec<_> = slices.iter().filter(|s| s.address_type == "IPv4").collect();
    assert_eq!(v4.len(), 1, "IPv4 gets its placeholder");
    assert!(endpoints(v4[0]).is_empty());
}

#[test]
fn pods_on_unknown_nodes_are_left_out_and_reported_unless_publishing_not_ready() {
    let pods = [
        pod("lost").ip("10.244.9.1").ready().on("node-gone"),
        pod("fine").ip("10.244.1.1").ready().on("node-1"),
    ];
    let p = plan(
        &service("web").port(80, 8080),
        &pods,
        &nodes(),
        &[],
        &Options::default(),
    );
    assert!(find_endpoint(&p.create, "lost").is_none());
    assert_eq!(p.pods_on_unknown_nodes, ["default/lost"]);

    let p = plan(
        &service("web").port(80, 8080).publish_not_ready(),
        &pods,
        &nodes(),
        &[],
        &Options::default(),
    );
    let (_, ep) = find_endpoint(&p.create, "lost").expect("published anyway");
    assert_eq!(ep.zone, None);
    assert!(p.pods_on_unknown_nodes.is_empty());
}

#[test]
fn node_without_a_zone_gives_endpoints_without_zone_or_zone_hint() {
    let mut zones = nodes();
    zones.insert("node-bare".to_owned(), None);
    let svc = service("web")
        .port(80, 8080)
        .traffic_distribution("PreferClose");
    let p = plan(
        &svc,
        &[pod("p").ip("10.244.1.1").ready().on("node-bare")],
        &zones,
        &[],
        &Options::default(),
    );
    let (_, ep) = find_endpoint(&p.create, "p").expect("endpoint");
    assert_eq!(
        (ep.zone.as_deref(), ep.node_name.as_deref()),
        (None, Some("node-bare"))
    );
    assert_eq!(ep.hints, None);
}
