//! UDP clients that keep sending from one port (DNS, statsd) are not black-holed when their endpoint
//! goes away: svcnet-proxy deletes the conntrack entries DNATed to it, so the next datagram from the
//! same port is balanced again over the endpoints that remain (kubernetes#48370). Real kernel, real
//! packets.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::namespace::with_namespace;
use svcnet_e2e::kit::vantage::Vantages;
use svcnet_e2e::kit::workload::testserver_image;
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(120);
/// The client's one source port.
const CLIENT_PORT: u16 = 40053;

/// Two Deployments of one pod each behind one UDP Service, so either can be removed on its own (a
/// replacement pod could reuse the removed pod's address and hide a stale flow).
fn manifests() -> String {
    let image = testserver_image();
    let deployment = |name: &str| {
        format!(
            "apiVersion: apps/v1
kind: Deployment
metadata: {{ name: {name} }}
spec:
  replicas: 1
  selector: {{ matchLabels: {{ app: {name} }} }}
  template:
    metadata: {{ labels: {{ app: {name}, group: dns }} }}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: server
{image}
        ports:
        - {{ name: udp, containerPort: 8081, protocol: UDP }}
---
"
        )
    };
    format!(
        "{}{}apiVersion: v1
kind: Service
metadata: {{ name: dns }}
spec:
  selector: {{ group: dns }}
  ports:
  - {{ name: dns, port: 53, targetPort: udp, protocol: UDP }}
",
        deployment("one"),
        deployment("two")
    )
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn a_udp_client_keeping_its_port_moves_on_when_its_endpoint_goes() -> Result<()> {
    let client = connect().await?;
    let vantages = Vantages::discover(&client).await?;
    with_namespace(&client, "udp-flows", |ns| async move {
        for doc in manifests().split("---\n").filter(|d| !d.trim().is_empty()) {
            ns.apply_yaml(doc).await?;
        }
        let ip: IpAddr = ns
            .api::<Service>()
            .get("dns")
            .await?
            .spec
            .and_then(|s| s.cluster_ip)
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| Error::invalid("dns", "no clusterIP"))?;
        let target = SocketAddr::new(ip, 53);
        let prober = vantages
            .from_any_node()?
            .with_timeout(Duration::from_millis(500));
        // Both pods serve before the client settles on one (its first answer fixes its flow).
        let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
        poll_for("both pods answering", TIMEOUT, || async {
            let reply = prober.udp(target).await.ok();
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.extend(reply.map(|r| r.pod));
            (seen.len() == 2).then_some(())
        })
        .await?;
        let first = poll_for("an answer from the fixed port", TIMEOUT, || async {
            prober.udp_from(target, CLIENT_PORT).await.ok()
        })
        .await?;
        // The flow sticks: the same pod answers again.
        let again = prober.udp_from(target, CLIENT_PORT).await?;
        assert_eq!(again.pod, first.pod, "one flow, one endpoint");

        // Remove the Deployment whose pod answered.
        let owner = if first.pod.starts_with("one-") {
            "one"
        } else {
            "two"
        };
        ns.api::<Deployment>()
            .patch(
                owner,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": 0 } })),
            )
            .await?;
        // The same client port now reaches the other pod: the stale flow was deleted. (Without
        // that, every datagram would follow the old entry to the gone pod and time out.)
        let moved = poll_for(
            "the client's next datagrams answered by the other pod",
            TIMEOUT,
            || async {
                prober
                    .udp_from(target, CLIENT_PORT)
                    .await
                    .ok()
                    .filter(|r| r.pod != first.pod)
            },
        )
        .await?;
        assert!(!moved.pod.starts_with(&format!("{owner}-")), "{moved:?}");
        Ok(())
    })
    .await
}
