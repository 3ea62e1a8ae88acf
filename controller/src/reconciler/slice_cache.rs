//! What the slice cache keeps of one of our EndpointSlices: all of it, with each endpoint in a
//! compact form. An `Endpoint` as k8s-openapi holds it is about 600 bytes in nine allocations
//! (a `targetRef` alone has seven optional strings); the endpoints this controller writes for pods
//! all have one shape, which fits in about 200 bytes with node names, zones and namespaces shared.
//! Endpoints of any other shape are kept as they are, so the slice given back is always exactly
//! the slice cached.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointHints, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::interner::Interner;
use super::uid::Uid;

/// A cached slice; [`CachedSlice::to_slice`] gives the slice back.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedSlice {
    metadata: ObjectMeta,
    address_type: String,
    ports: Option<Vec<k8s_openapi::api::discovery::v1::EndpointPort>>,
    endpoints: Option<Box<[CachedEndpoint]>>,
}

#[derive(Debug, Clone, PartialEq)]
enum CachedEndpoint {
    Pod(PodEndpoint),
    Other(Box<Endpoint>),
}

/// An endpoint of one address with a `Pod` targetRef of namespace, name and uid only.
#[derive(Debug, Clone, PartialEq)]
struct PodEndpoint {
    address: IpAddr,
    conditions: Option<EndpointConditions>,
    hostname: Option<Box<str>>,
    node_name: Option<Arc<str>>,
    zone: Option<Arc<str>>,
    hints: Option<Box<EndpointHints>>,
    namespace: Arc<str>,
    name: Box<str>,
    uid: Uid,
}

impl PodEndpoint {
    /// The compact form of `endpoint`, if it has this shape (checked by the caller).
    fn of(endpoint: &Endpoint, strings: &Interner<str>) -> Option<Self> {
        let [address] = endpoint.addresses.as_slice() else {
            return None;
        };
        let target = endpoint.target_ref.as_ref()?;
        Some(PodEndpoint {
            address: address.parse().ok()?,
            conditions: endpoint.conditions.clone(),
            hostname: endpoint.hostname.as_deref().map(Into::into),
            node_name: endpoint.node_name.as_deref().map(|n| strings.str(n)),
            zone: endpoint.zone.as_deref().map(|z| strings.str(z)),
            hints: endpoint.hints.clone().map(Box::new),
            namespace: strings.str(target.namespace.as_deref()?),
            name: target.name.as_deref()?.into(),
            uid: Uid::of(target.uid.as_deref()?),
        })
    }

    fn to_endpoint(&self) -> Endpoint {
        Endpoint {
            addresses: vec![self.address.to_string()],
            conditions: self.conditions.clone(),
            deprecated_topology: None,
            hints: self.hints.as_deref().cloned(),
            hostname: self.hostname.as_deref().map(str::to_owned),
            node_name: self.node_name.as_deref().map(str::to_owned),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".to_owned()),
                namespace: Some(self.namespace.to_string()),
                name: Some(self.name.to_string()),
                uid: Some(self.uid.to_string()),
                ..ObjectReference::default()
            }),
            zone: self.zone.as_deref().map(str::to_owned),
        }
    }
}

impl CachedEndpoint {
    fn of(endpoint: &Endpoint, strings: &Interner<str>) -> Self {
        // Compact only when nothing is lost (an address in another spelling, another kind of
        // target, a field the compact form has no room for): checked by converting back.
        match PodEndpoint::of(endpoint, strings) {
            Some(compact) if compact.to_endpoint() == *endpoint => CachedEndpoint::Pod(compact),
            _ => CachedEndpoint::Other(Box::new(endpoint.clone())),
        }
    }

    fn to_endpoint(&self) -> Endpoint {
        match self {
            CachedEndpoint::Pod(compact) => compact.to_endpoint(),
            CachedEndpoint::Other(endpoint) => (**endpoint).clone(),
        }
    }
}

impl CachedSlice {
    /// Keeps `slice`, sharing node names, zones and namespaces through `strings`.
    pub fn of(slice: &EndpointSlice, strings: &Interner<str>) -> Self {
        CachedSlice {
            metadata: slice.metadata.clone(),
            address_type: slice.address_type.clone(),
            ports: slice.ports.clone(),
            endpoints: slice.endpoints.as_ref().map(|endpoints| {
                endpoints
                    .iter()
                    .map(|e| CachedEndpoint::of(e, strings))
                    .collect()
            }),
        }
    }

    /// The slice as it was cached.
    pub fn to_slice(&self) -> EndpointSlice {
        EndpointSlice {
            metadata: self.metadata.clone(),
            address_type: self.address_type.clone(),
            ports: self.ports.clone(),
            endpoints: self
                .endpoints
                .as_ref()
                .map(|endpoints| endpoints.iter().map(CachedEndpoint::to_endpoint).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "shop", "uid": "s1", "generation": 3,
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap_or_else(|e| panic!("fixture slice: {e}"))
    }

    fn pod_endpoint(ip: &str, name: &str) -> serde_json::Value {
        serde_json::json!({
            "addresses": [ip],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": "node-1", "zone": "zone-a",
            "targetRef": {"kind": "Pod", "namespace": "shop", "name": name,
                          "uid": "0b7e6f4a-2c1d-4e5f-9a8b-7c6d5e4f3a2b"},
        })
    }

    #[test]
    fn every_slice_comes_back_exactly_as_cached() {
        let strings = Interner::default();
        let odd = [
            // Not the shape this controller writes: kept whole.
            serde_json::json!({"addresses": ["10.0.0.1", "10.0.0.2"]}),
            serde_json::json!({"addresses": ["010.000.000.001"], "targetRef": {"kind": "Pod",
                "namespace": "shop", "name": "p", "uid": "u"}}),
            serde_json::json!({"addresses": ["10.0.0.3"], "targetRef": {"kind": "Node",
                "name": "n", "uid": "u"}}),
            serde_json::json!({"addresses": ["10.0.0.4"], "targetRef": {"kind": "Pod",
                "namespace": "shop", "name": "p", "uid": "u", "resourceVersion": "7"}}),
            serde_json::json!({"addresses": ["10.0.0.5"], "deprecatedTopology": {"a": "b"},
                "targetRef": {"kind": "Pod", "namespace": "shop", "name": "p", "uid": "u"}}),
        ];
        let mut with_hints = pod_endpoint("fd00::1", "web-2");
        with_hints["hints"] = serde_json::json!({"forZones": [{"name": "zone-a"}]});
        with_hints["hostname"] = serde_json::json!("web-2");
        let mut all = vec![pod_endpoint("10.244.1.5", "web-1"), with_hints];
        all.extend(odd);
        for endpoints in [
            serde_json::Value::Null,
            serde_json::json!([]),
            serde_json::Value::Array(all),
        ] {
            let original = slice(endpoints);
            let cached = CachedSlice::of(&original, &strings);
            assert_eq!(cached.to_slice(), original);
        }
    }

    #[test]
    fn pod_endpoints_are_compact_and_share_their_strings() {
        let strings = Interner::default();
        let original = slice(serde_json::json!([
            pod_endpoint("10.244.1.5", "web-1"),
            pod_endpoint("10.244.1.6", "web-2"),
        ]));
        let cached = CachedSlice::of(&original, &strings);
        let compact: Vec<&PodEndpoint> = cached
            .endpoints
            .iter()
            .flatten()
            .filter_map(|e| match e {
                CachedEndpoint::Pod(p) => Some(p),
                CachedEndpoint::Other(_) => None,
            })
            .collect();
        assert_eq!(compact.len(), 2);
        let node = |p: &PodEndpoint| p.node_name.clone();
        assert!(
            matches!((node(compact[0]), node(compact[1])), (Some(a), Some(b)) if Arc::ptr_eq(&a, &b))
        );
        assert!(
            size_of::<CachedEndpoint>() <= 144,
            "{}",
            size_of::<CachedEndpoint>()
        );
    }
}
