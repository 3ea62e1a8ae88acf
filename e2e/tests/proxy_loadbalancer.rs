//! LoadBalancer traffic with real packets: the ingress IP in a Service's status reaches its pods from
//! outside, and `loadBalancerSourceRanges` lets in only the sources inside them. Local cluster only:
//! the test routes the address to a node in the outside client's namespace (as a cloud load
//! balancer in direct-routing mode would deliver it).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::slices::wait_endpoints;
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::kit::workload::{deployment, service};
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Result, netns};

const TIMEOUT: Duration = Duration::from_secs(120);
/// On the nodes' subnet, bound nowhere: only the route below leads to it.
const LB_IP: [u8; 4] = [172, 18, 0, 240];

/// A route in the outside client's namespace, removed when dropped (also when the test fails).
struct Route {
    netns: String,
    dest: String,
}

impl Route {
    fn add(netns: &str, dest: &str, via: &str) -> Result<Self> {
        netns::ip(Some(netns), &["route", "replace", dest, "via", via])?;
        Ok(Route {
            netns: netns.to_owned(),
            dest: dest.to_owned(),
        })
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let _ = netns::ip(Some(&self.netns), &["route", "del", &self.dest]);
    }
}

async fn set_source_ranges(api: &kube::Api<Service>, ranges: &[&str]) -> Result<()> {
    let patch = json!({ "spec": { "loadBalancerSourceRanges": ranges } });
    api.patch("lb", &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn load_balancer_ip_answers_from_outside_within_its_source_ranges() -> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    let outside_netns = topology.outside_netns()?.to_owned();
    let node = topology.first_node()?.clone();
    with_namespace(&client, "loadbalancer", |ns| async move {
        ns.apply_yaml(&deployment("lb", 1, false, 0)).await?;
        ns.apply_yaml(&service("lb", "lb", &["type: LoadBalancer"]))
            .await?;
        let pod = wait_ready(&ns.api::<Pod>(), "app=lb", 1).await?.remove(0);
        wait_endpoints(&ns.api(), "lb", "1 endpoint", TIMEOUT, |e| {
            e.ready_count() == 1
        })
        .await?;
        let services = ns.api::<Service>();
        let lb_ip = IpAddr::from(LB_IP);
        let status =
            json!({ "status": { "loadBalancer": { "ingress": [{ "ip": lb_ip.to_string() }] } } });
        services
            .patch_status("lb", &PatchParams::default(), &Patch::Merge(status))
            .await?;
        let _route = Route::add(&outside_netns, &format!("{lb_ip}/32"), &node.ipv4)?;
        let outside =
            Prober::from_netns(outside_netns.as_str()).with_timeout(Duration::from_secs(1));
        let target = SocketAddr::new(lb_ip, 80);

        // The outside client's range is allowed: its connections reach the pod.
        set_source_ranges(&services, &["172.18.0.0/24"]).await?;
        let reply = poll_for("the LoadBalancer IP to answer", TIMEOUT, || async {
            outside.tcp(target).await.ok()
        })
        .await?;
        assert_eq!(reply.pod, pod.name);

        // Only another range: the firewall drops it, once the rules have the change.
        set_source_ranges(&services, &["10.0.0.0/8"]).await?;
        poll_for("the outside client to be dropped", TIMEOUT, || async {
            outside.tcp(target).await.is_err().then_some(())
        })
        .await?;
        for _ in 0..3 {
            assert!(
                outside.tcp(target).await.is_err(),
                "a source outside loadBalancerSourceRanges got through"
            );
        }
        Ok(())
    })
    .await
}
