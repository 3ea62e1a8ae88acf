//! The local cluster itself: pods of a Deployment run, turn Ready through their readiness probes, and
//! answer by pod IP from every node namespace and from the outside namespace.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use svcnet_e2e::addresses::OUTSIDE_V4;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::prober::Prober;
use svcnet_e2e::kit::topology::Topology;
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result};

const DEPLOYMENT: &str = include_str!("../../examples/local-cluster/echo-deployment.yaml");

fn running_and_ready(pod: &Pod) -> Option<(String, IpAddr)> {
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let ip = status.pod_ip.as_deref()?.parse().ok()?;
    (status.phase.as_deref() == Some("Running")
        && ready
        && pod.metadata.deletion_timestamp.is_none())
    .then(|| (pod.metadata.name.clone().unwrap_or_default(), ip))
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn deployment_pods_become_ready_and_answer_by_pod_ip_from_every_node_and_outside()
-> Result<()> {
    let client = connect().await?;
    let topology = Topology::local()?;
    with_namespace(&client, "local-cluster", |ns| async move {
        ns.apply_yaml(DEPLOYMENT).await?;
        let pods_api = ns.api::<Pod>();
        let pods = poll_for(
            "3 Running, Ready pods with IPs",
            Duration::from_secs(90),
            || {
                let api = pods_api.clone();
                async move {
                    let list = api
                        .list(&ListParams::default().labels("app=echo"))
                        .await
                        .ok()?;
                    let ready: Vec<_> = list.items.iter().filter_map(running_and_ready).collect();
                    (ready.len() == 3).then_some(ready)
                }
            },
        )
        .await?;

        let mut sources: Vec<(String, String)> = topology
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), n.netns.clone()))
            .collect();
        sources.push(("outside".into(), topology.outside_netns()?.to_owned()));
        for (pod, ip) in &pods {
            for (source, netns) in &sources {
                let prober = Prober::from_netns(netns.as_str());
                for (proto, reply) in [
                    ("tcp", prober.tcp(SocketAddr::new(*ip, 8080)).await),
                    ("udp", prober.udp(SocketAddr::new(*ip, 8081)).await),
                ] {
                    let reply = reply.map_err(|e| {
                        Error::invalid(format!("{proto} {source} -> {pod} ({ip})"), e)
                    })?;
                    assert_eq!(&reply.pod, pod, "{proto} from {source} to {ip}");
                    if source == "outside" {
                        // No NAT on the way: the pod sees the outside client's own address.
                        assert_eq!(reply.client.ip(), IpAddr::V4(OUTSIDE_V4));
                    }
                }
            }
        }
        Ok(())
    })
    .await
}
