//! EndpointSlices in the apiserver's protobuf encoding, for our creates and updates.
//!
//! kube-controller-manager talks protobuf for built-in types: against JSON it costs the apiserver
//! less to decode the request and encode the answer. The benchmark measured a small gain (fewer
//! slow updates while the apiserver's garbage collector runs; docs/benchmarks.md). Reads stay JSON
//! (the watches share the JSON encoding with other clients).
//!
//! The wire format: the 4 bytes `k8s\0`, then a `runtime.Unknown` carrying the type and the
//! object's own protobuf bytes.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_pb::api::core::v1 as pb_core;
use k8s_pb::api::discovery::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;

use crate::Error;

/// The content type of requests and answers.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8; 4] = b"k8s\0";
const API_VERSION: &str = "discovery.k8s.io/v1";
const KIND: &str = "EndpointSlice";

/// `slice` as a request body. Every field we write is carried; `managedFields` is not (we never
/// send it: the apiserver keeps the object's own).
pub fn encode(slice: &EndpointSlice) -> Vec<u8> {
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(API_VERSION.to_owned()),
            kind: Some(KIND.to_owned()),
        }),
        raw: Some(to_pb(slice).encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    envelope.encode(&mut out).unwrap_or_default();
    out
}

/// What an answer says: the written slice's metadata (without `managedFields`), or the apiserver's
/// `Status` for a failure.
#[derive(Debug)]
pub enum Answer {
    Written(Box<ObjectMeta>),
    Failed(Box<pb_meta::Status>),
}

/// Reads an answer body.
pub fn decode(body: &[u8]) -> Result<Answer, Error> {
    let bad = |what: &str| Error::Protobuf(what.to_owned());
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| bad("answer without the k8s protobuf prefix"))?;
    let envelope = Unknown::decode(rest).map_err(|e| bad(&e.to_string()))?;
    let raw = envelope.raw.unwrap_or_default();
    let kind = envelope.type_meta.and_then(|t| t.kind).unwrap_or_default();
    match kind.as_str() {
        KIND => {
            let slice =
                pb::EndpointSlice::decode(raw.as_slice()).map_err(|e| bad(&e.to_string()))?;
            Ok(Answer::Written(Box::new(meta_from_pb(
                slice.metadata.unwrap_or_default(),
            ))))
        }
        "Status" => Ok(Answer::Failed(Box::new(
            pb_meta::Status::decode(raw.as_slice()).map_err(|e| bad(&e.to_string()))?,
        ))),
        other => Err(bad(&format!("unexpected kind {other:?} in the answer"))),
    }
}

fn to_pb(slice: &EndpointSlice) -> pb::EndpointSlice {
    pb::EndpointSlice {
        metadata: Some(meta_to_pb(&slice.metadata)),
        address_type: Some(slice.address_type.clone()),
        endpoints: slice
            .endpoints
            .iter()
            .flatten()
            .map(endpoint_to_pb)
            .collect(),
        ports: slice.ports.iter().flatten().map(port_to_pb).collect(),
    }
}

fn endpoint_to_pb(e: &Endpoint) -> pb::Endpoint {
    pb::Endpoint {
        addresses: e.addresses.clone(),
        conditions: e.conditions.as_ref().map(|c| pb::EndpointConditions {
            ready: c.ready,
            serving: c.serving,
            terminating: c.terminating,
        }),
        hostname: e.hostname.clone(),
        target_ref: e.target_ref.as_ref().map(reference_to_pb),
        deprecated_topology: e.deprecated_topology.clone().unwrap_or_default(),
        node_name: e.node_name.clone(),
        zone: e.zone.clone(),
        hints: e.hints.as_ref().map(|h| pb::EndpointHints {
            for_zones: h
                .for_zones
                .iter()
                .flatten()
                .map(|z| pb::ForZone {
                    name: Some(z.name.clone()),
                })
                .collect(),
            for_nodes: h
                .for_nodes
                .iter()
                .flatten()
                .map(|n| pb::ForNode {
                    name: Some(n.name.clone()),
                })
                .collect(),
        }),
    }
}

fn port_to_pb(p: &EndpointPort) -> pb::EndpointPort {
    pb::EndpointPort {
        name: p.name.clone(),
        protocol: p.protocol.clone(),
        port: p.port,
        app_protocol: p.app_protocol.clone(),
    }
}

fn reference_to_pb(r: &ObjectReference) -> pb_core::ObjectReference {
    pb_core::ObjectReference {
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        uid: r.uid.clone(),
        api_version: r.api_version.clone(),
        resource_version: r.resource_version.clone(),
        field_path: r.field_path.clone(),
    }
}

fn time_to_pb(t: &Time) -> pb_meta::Time {
    pb_meta::Time {
        seconds: Some(t.0.as_second()),
        nanos: Some(t.0.subsec_nanosecond()),
    }
}

fn time_from_pb(t: &pb_meta::Time) -> Option<Time> {
    Timestamp::new(t.seconds.unwrap_or(0), t.nanos.unwrap_or(0))
        .ok()
        .map(Time)
}

fn meta_to_pb(m: &ObjectMeta) -> pb_meta::ObjectMeta {
    pb_meta::ObjectMeta {
        name: m.name.clone(),
        generate_name: m.generate_name.clone(),
        namespace: m.namespace.clone(),
        self_link: m.self_link.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        generation: m.generation,
        creation_timestamp: m.creation_timestamp.as_ref().map(time_to_pb),
        deletion_timestamp: m.deletion_timestamp.as_ref().map(time_to_pb),
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
        owner_references: m
            .owner_references
            .iter()
            .flatten()
            .map(|o| pb_meta::OwnerReference {
                api_version: Some(o.api_version.clone()),
                kind: Some(o.kind.clone()),
                name: Some(o.name.clone()),
                uid: Some(o.uid.clone()),
                controller: o.controller,
                block_owner_deletion: o.block_owner_deletion,
            })
            .collect(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
        managed_fields: Vec::new(),
    }
}

fn meta_from_pb(m: pb_meta::ObjectMeta) -> ObjectMeta {
    let some_map =
        |map: std::collections::BTreeMap<String, String>| (!map.is_empty()).then_some(map);
    let some_vec = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let owners: Vec<OwnerReference> = m
        .owner_references
        .into_iter()
        .map(|o| OwnerReference {
            api_version: o.api_version.unwrap_or_default(),
            kind: o.kind.unwrap_or_default(),
            name: o.name.unwrap_or_default(),
            uid: o.uid.unwrap_or_default(),
            controller: o.controller,
            block_owner_deletion: o.block_owner_deletion,
        })
        .collect();
    ObjectMeta {
        name: m.name,
        generate_name: m.generate_name,
        namespace: m.namespace,
        self_link: m.self_link,
        uid: m.uid,
        resource_version: m.resource_version,
        generation: m.generation,
        creation_timestamp: m.creation_timestamp.as_ref().and_then(time_from_pb),
        deletion_timestamp: m.deletion_timestamp.as_ref().and_then(time_from_pb),
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        labels: some_map(m.labels),
        annotations: some_map(m.annotations),
        owner_references: (!owners.is_empty()).then_some(owners),
        finalizers: some_vec(m.finalizers),
        managed_fields: None,
    }
}

/// The apiserver's protobuf answer for a failure with `code`, for tests.
#[cfg(test)]
pub fn status_body(code: i32) -> Vec<u8> {
    let status = pb_meta::Status {
        code: Some(code),
        reason: Some("Conflict".into()),
        message: Some("the object has been modified".into()),
        ..Default::default()
    };
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Status".into()),
        }),
        raw: Some(status.encode_to_vec()),
        ..Default::default()
    };
    let mut body = MAGIC.to_vec();
    body.extend(envelope.encode_to_vec());
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{EndpointConditions, EndpointHints, ForNode, ForZone};
    use std::collections::BTreeMap;

    fn full_slice() -> EndpointSlice {
        let labels = BTreeMap::from([
            ("kubernetes.io/service-name".to_owned(), "web".to_owned()),
            (
                "endpointslice.kubernetes.io/managed-by".to_owned(),
                "svcnet-controller".to_owned(),
            ),
        ]);
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some("web-abcde".into()),
                generate_name: Some("web-".into()),
                namespace: Some("shop".into()),
                uid: Some("0b9e4f8a-0000-4000-8000-000000000001".into()),
                resource_version: Some("4711".into()),
                generation: Some(3),
                creation_timestamp: Some(Time("2026-12-07T10:00:00Z".parse().unwrap())),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    "endpoints.kubernetes.io/last-change-trigger-time".to_owned(),
                    "2026-12-07T10:00:01Z".to_owned(),
                )])),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Service".into(),
                    name: "web".into(),
                    uid: "0b9e4f8a-0000-4000-8000-000000000002".into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: Some(vec![Endpoint {
                addresses: vec!["10.244.1.5".into()],
                conditions: Some(EndpointConditions {
                    ready: Some(false),
                    serving: Some(true),
                    terminating: Some(true),
                }),
                hostname: Some("web-0".into()),
                node_name: Some("node-1".into()),
                zone: Some("zone-a".into()),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: Some("shop".into()),
                    name: Some("web-0".into()),
                    uid: Some("0b9e4f8a-0000-4000-8000-000000000003".into()),
                    ..ObjectReference::default()
                }),
                hints: Some(EndpointHints {
                    for_zones: Some(vec![ForZone {
                        name: "zone-a".into(),
                    }]),
                    for_nodes: Some(vec![ForNode {
                        name: "node-1".into(),
                    }]),
                }),
                deprecated_topology: None,
            }]),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                protocol: Some("TCP".into()),
                port: Some(8080),
                app_protocol: Some("kubernetes.io/h2c".into()),
            }]),
        }
    }

    /// The apiserver's answer for `slice`: the same envelope around it.
    fn answer(slice: &EndpointSlice) -> Vec<u8> {
        encode(slice)
    }

    #[test]
    fn every_field_we_write_goes_into_the_request() {
        let slice = full_slice();
        let body = encode(&slice);
        assert!(body.starts_with(b"k8s\0"));
        let envelope = Unknown::decode(&body[4..]).unwrap();
        let type_meta = envelope.type_meta.unwrap();
        assert_eq!(
            type_meta.api_version.as_deref(),
            Some("discovery.k8s.io/v1")
        );
        assert_eq!(type_meta.kind.as_deref(), Some("EndpointSlice"));
        let sent = pb::EndpointSlice::decode(envelope.raw.unwrap().as_slice()).unwrap();
        assert_eq!(sent, to_pb(&slice));
        assert_eq!(sent.address_type.as_deref(), Some("IPv4"));
        let ep = &sent.endpoints[0];
        assert_eq!(ep.addresses, ["10.244.1.5"]);
        let c = ep.conditions.unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
        assert_eq!(ep.hostname.as_deref(), Some("web-0"));
        assert_eq!(ep.node_name.as_deref(), Some("node-1"));
        assert_eq!(ep.zone.as_deref(), Some("zone-a"));
        let target = ep.target_ref.clone().unwrap();
        assert_eq!(target.kind.as_deref(), Some("Pod"));
        assert_eq!(target.name.as_deref(), Some("web-0"));
        let hints = ep.hints.clone().unwrap();
        assert_eq!(hints.for_zones[0].name.as_deref(), Some("zone-a"));
        assert_eq!(hints.for_nodes[0].name.as_deref(), Some("node-1"));
        let port = &sent.ports[0];
        assert_eq!(port.name.as_deref(), Some("http"));
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(port.port, Some(8080));
        assert_eq!(port.app_protocol.as_deref(), Some("kubernetes.io/h2c"));
        // The metadata comes back as it went.
        assert_eq!(meta_from_pb(sent.metadata.unwrap()), slice.metadata);
    }

    #[test]
    fn an_answer_gives_the_written_metadata() {
        let slice = full_slice();
        match decode(&answer(&slice)).unwrap() {
            Answer::Written(meta) => {
                assert_eq!(meta.generation, Some(3));
                assert_eq!(meta.uid, slice.metadata.uid);
                assert_eq!(*meta, slice.metadata);
            }
            Answer::Failed(status) => panic!("not a failure: {status:?}"),
        }
    }

    #[test]
    fn a_failure_gives_the_status_and_garbage_is_an_error() {
        let body = status_body(409);
        match decode(&body).unwrap() {
            Answer::Failed(s) => assert_eq!(s.code, Some(409)),
            Answer::Written(_) => panic!("a failure"),
        }
        assert!(decode(b"{\"kind\":\"Status\"}").is_err());
        assert!(decode(b"k8s\0\xff\xff").is_err());
    }

    #[test]
    fn an_empty_slice_has_no_endpoints_or_ports() {
        let mut slice = full_slice();
        slice.endpoints = None;
        slice.ports = None;
        let sent = to_pb(&slice);
        assert!(sent.endpoints.is_empty() && sent.ports.is_empty());
    }
}
