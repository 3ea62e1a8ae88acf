//! The local cluster itself: pods of a Deployment run, turn Ready through their readiness probes, and
//! answer on every address by pod IP from every node namespace, from the outside namespace and from
//! each other.

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use svcnet_e2e::addresses::{OUTSIDE_V4, OUTSIDE_V6};
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::pods::wait_ready;
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::{Error, Result};

const DEPLOYMENT: &str = include_str!("../../examples/local-cluster/echo-deployment.yaml");

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn deployment_pods_become_ready_and_answer_by_pod_ip_from_nodes_outside_and_pods()
-> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    with_namespace(&client, "local-cluster", |ns| async move {
        ns.apply_yaml(DEPLOYMENT).await?;
        let pods = wait_ready(&ns.api::<Pod>(), "app=echo", 3).await?;
        let families = if topology.inventory.dual_stack { 2 } else { 1 };

        let mut sources: Vec<(String, String)> = topology
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), n.netns.clone()))
            .collect();
        sources.push(("outside".into(), topology.outside_netns()?.to_owned()));
        sources.push((pods[0].name.clone(), topology.pod_netns(&pods[0].uid)));
        for pod in &pods {
            assert_eq!(pod.ips.len(), families, "one address per family: {pod:?}");
            for ip in &pod.ips {
                for (source, netns) in &sources {
                    let prober = Prober::from_netns(netns.as_str());
                    for (proto, reply) in [
                        ("tcp", prober.tcp(SocketAddr::new(*ip, 8080)).await),
                        ("udp", prober.udp(SocketAddr::new(*ip, 8081)).await),
                    ] {
                        let what = format!("{proto} {source} -> {} ({ip})", pod.name);
                        let reply = reply.map_err(|e| Error::invalid(what.clone(), e))?;
                        assert_eq!(reply.pod, pod.name, "{what}");
                        if source == "outside" {
                            // No NAT on the way: the pod sees the outside client's own address.
                            let outside = match ip {
                                IpAddr::V4(_) => IpAddr::V4(OUTSIDE_V4),
                                IpAddr::V6(_) => IpAddr::V6(OUTSIDE_V6),
                            };
                            assert_eq!(reply.client.ip(), outside, "{what}");
                        }
                    }
                }
            }
        }
        Ok(())
    })
    .await
}
