//! [`SlicePlan`]: the planner's output.

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// An existing slice to delete: enough for a delete call with uid/resourceVersion preconditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceRef {
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl SliceRef {
    pub(crate) fn of(slice: &EndpointSlice) -> Self {
        Self {
            namespace: slice.metadata.namespace.clone(),
            name: slice.metadata.name.clone().unwrap_or_default(),
            uid: slice.metadata.uid.clone(),
            resource_version: slice.metadata.resource_version.clone(),
        }
    }
}

/// What to write so that a Service's slices match its Pods.
///
/// - `create`: new slices with `metadata.generateName` and no name.
/// - `update`: full replacements of existing slices; they keep the existing `metadata` (name, uid,
///   resourceVersion, annotations), so an update can be sent as a conditional replace.
/// - `delete`: existing slices to remove.
///
/// Creates come in planning order (family, then port set); updates and deletes are sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlicePlan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<SliceRef>,
    /// Endpoints written that no existing slice of the same family and port set held
    /// (upstream metric `endpoints_added_per_sync`).
    pub endpoints_added: usize,
    /// Endpoints dropped from existing slices, including those in deleted slices
    /// (upstream `endpoints_removed_per_sync` counts only drops within a kept port set).
    pub endpoints_removed: usize,
    /// Endpoints kept but changed for the worse for a consumer: no longer ready or serving, newly
    /// terminating, or anything else about them changed (node, zone, hints, target).
    pub endpoints_degraded: usize,
    /// `namespace/name` of Pods left out because their Node is unknown (not in `node_zones`).
    /// Upstream returns an error here so the Service is retried: requeue it if non-empty.
    pub pods_on_unknown_nodes: Vec<String>,
}

impl SlicePlan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    /// Whether a consumer loses anything by this plan waiting: an endpoint removed or degraded.
    /// A plan that only adds endpoints, or marks them ready, serving or no longer terminating,
    /// takes nothing away.
    pub fn takes_away(&self) -> bool {
        self.endpoints_removed > 0 || self.endpoints_degraded > 0
    }

    /// Slices this plan writes (upstream metric `endpointslices_changed_per_sync`).
    pub fn slices_changed(&self) -> usize {
        self.create.len() + self.update.len() + self.delete.len()
    }
}
