//! Slice metadata derived from the Service: labels, ownerReference, generateName
//! (upstream `newEndpointSlice`, `setEndpointSliceLabels`, `getEndpointSlicePrefix`, `ownedBy`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::AddressFamily;

/// `kubernetes.io/service-name`.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `endpointslice.kubernetes.io/managed-by`.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// `service.kubernetes.io/headless`, set (empty value) on slices of headless Services.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";

/// The metadata every slice of one Service should carry.
#[derive(Debug)]
pub(crate) struct SliceTemplate {
    namespace: Option<String>,
    generate_name: String,
    labels: BTreeMap<String, String>,
    owner: OwnerReference,
}

impl SliceTemplate {
    pub(crate) fn new(service: &Service, manager: &str) -> Self {
        let name = service.metadata.name.clone().unwrap_or_default();
        // Service labels minus the three reserved keys, which we set ourselves.
        let mut labels: BTreeMap<String, String> = service
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| !is_reserved_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !is_service_ip_set(service) {
            labels.insert(LABEL_HEADLESS.to_owned(), String::new());
        }
        labels.insert(LABEL_SERVICE_NAME.to_owned(), name.clone());
        labels.insert(LABEL_MANAGED_BY.to_owned(), manager.to_owned());
        let owner = OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Service".to_owned(),
            name: name.clone(),
            uid: service.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        Self {
            namespace: service.metadata.namespace.clone(),
            // Upstream uses "<name>-" whenever that is a valid DNS-1123 subdomain prefix, which
            // it always is for a valid Service name; the apiserver truncates the prefix to 58
            // characters when it generates the name.
            generate_name: format!("{name}-"),
            labels,
            owner,
        }
    }

    /// A new slice (no name: the writer creates it with `generateName`).
    pub(crate) fn new_slice(
        &self,
        family: AddressFamily,
        ports: Vec<EndpointPort>,
    ) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(self.generate_name.clone()),
                namespace: self.namespace.clone(),
                labels: Some(self.labels.clone()),
                owner_references: Some(vec![self.owner.clone()]),
                ..ObjectMeta::default()
            },
            address_type: family.address_type().to_owned(),
            endpoints: Some(Vec::new()),
            ports: Some(ports),
        }
    }

    /// Labels or ownerReferences differ from what the Service asks for.
    pub(crate) fn meta_drifted(&self, slice: &EndpointSlice) -> bool {
        slice.metadata.labels.as_ref() != Some(&self.labels)
            || slice.metadata.owner_references.as_deref() != Some(std::slice::from_ref(&self.owner))
    }

    /// Set labels and ownerReferences to what the Service asks for.
    pub(crate) fn apply_meta(&self, slice: &mut EndpointSlice) {
        slice.metadata.labels = Some(self.labels.clone());
        slice.metadata.owner_references = Some(vec![self.owner.clone()]);
    }

    /// Upstream `ownedBy`: an ownerReference to this Service's UID (kind Service, apiVersion v1).
    /// Slices failing this belong to an older Service of the same name and are deleted, never reused.
    pub(crate) fn owned(&self, slice: &EndpointSlice) -> bool {
        slice.metadata.owner_references.iter().flatten().any(|o| {
            o.uid == self.owner.uid
                && o.kind == self.owner.kind
                && o.api_version == self.owner.api_version
        })
    }

    /// Whether `slice` is exactly the placeholder we would create for `family` (upstream
    /// `placeholderSliceCompare`: namespace, labels, ownerReferences, addressType, no ports, no
    /// endpoints; name, resourceVersion and annotations don't count).
    pub(crate) fn is_placeholder(&self, slice: &EndpointSlice, family: AddressFamily) -> bool {
        slice.metadata.namespace == self.namespace
            && !self.meta_drifted(slice)
            && slice.address_type == family.address_type()
            && slice.ports.as_ref().is_none_or(Vec::is_empty)
            && slice.endpoints.as_ref().is_none_or(Vec::is_empty)
    }
}

fn is_reserved_label(key: &str) -> bool {
    key == LABEL_SERVICE_NAME || key == LABEL_MANAGED_BY || key == LABEL_HEADLESS
}

/// Upstream `isServiceIPSet`: a ClusterIP that is neither empty nor `None`.
pub(crate) fn is_service_ip_set(service: &Service) -> bool {
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or_default();
    !ip.is_empty() && ip != "None"
}

/// A slice is ours to plan if it carries our manager label and this Service's name label and
/// lives in the Service's namespace. Everything else is ignored.
pub(crate) fn is_ours(slice: &EndpointSlice, service: &Service, manager: &str) -> bool {
    let labels = slice.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    label(LABEL_MANAGED_BY) == Some(manager)
        && label(LABEL_SERVICE_NAME) == service.metadata.name.as_deref()
        && slice.metadata.namespace.as_deref().unwrap_or_default()
            == service.metadata.namespace.as_deref().unwrap_or_default()
}
