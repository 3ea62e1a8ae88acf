//! What the Services store keeps of a Service: the fields the planner and the triggers read. The
//! rest (annotations such as kubectl's last-applied configuration, managed fields, status, the
//! proxy's settings) can be kilobytes per Service and is dropped as it arrives.

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Strips a Service in place down to what the EndpointSlice controller reads. A field read by the
/// planner must be kept here (the test below plans from both and compares).
pub fn strip_service(svc: &mut Service) {
    let meta = std::mem::take(&mut svc.metadata);
    svc.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        labels: meta.labels,
        creation_timestamp: meta.creation_timestamp,
        deletion_timestamp: meta.deletion_timestamp,
        ..ObjectMeta::default()
    };
    svc.spec = svc.spec.take().map(|spec| ServiceSpec {
        selector: spec.selector,
        ports: spec.ports,
        type_: spec.type_,
        cluster_ip: spec.cluster_ip,
        ip_families: spec.ip_families,
        publish_not_ready_addresses: spec.publish_not_ready_addresses,
        traffic_distribution: spec.traffic_distribution,
        ..ServiceSpec::default()
    });
    svc.status = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpointslice::{Options, PodView, plan};
    use std::collections::BTreeMap;

    #[test]
    fn a_stripped_service_plans_the_same_slices() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                         "creationTimestamp": "2026-11-22T00:00:00Z",
                         "labels": {"team": "a"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x".repeat(2048)}},
            "spec": {"selector": {"app": "web"}, "type": "LoadBalancer", "clusterIP": "fd00::10",
                     "clusterIPs": ["fd00::10"], "ipFamilies": ["IPv6"],
                     "publishNotReadyAddresses": true, "trafficDistribution": "PreferClose",
                     "externalTrafficPolicy": "Local", "healthCheckNodePort": 30001,
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
        }))
        .unwrap_or_default();
        let mut stripped = svc.clone();
        strip_service(&mut stripped);
        assert!(stripped.metadata.annotations.is_none() && stripped.status.is_none());

        let pod = |name: &str, ip: &str| PodView {
            name: name.into(),
            namespace: "shop".into(),
            uid: name.into(),
            ips: vec![ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())],
            node_name: Some("node-1".into()),
            ready: name.ends_with('1'),
            ..PodView::default()
        };
        let pods = [pod("web-1", "fd00::1"), pod("web-2", "fd00::2")];
        let zones = BTreeMap::from([("node-1".to_owned(), Some("zone-a".to_owned()))]);
        let options = Options::default();
        let want = plan(&svc, &pods, &zones, &[], &options);
        assert!(!want.is_empty());
        assert_eq!(plan(&stripped, &pods, &zones, &[], &options), want);
    }
}
