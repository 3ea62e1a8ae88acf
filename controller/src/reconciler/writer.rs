//! Applies a [`SlicePlan`]: creates first (so no endpoint is ever missing), then updates, then deletes.
//! Every write is recorded in the tracker, for the stale-cache guard.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::tracker::SliceTracker;
use crate::Error;
use crate::endpointslice::{DEFAULT_MANAGER, SlicePlan};
use crate::metrics::Metrics;

fn conflict_or(e: kube::Error, name: &str) -> Error {
    match e {
        kube::Error::Api(ref status) if status.code == 409 => Error::Conflict(name.to_owned()),
        other => Error::Kube(other),
    }
}

pub async fn apply(
    api: &Api<EndpointSlice>,
    service: &str,
    plan: &SlicePlan,
    tracker: &std::sync::Mutex<SliceTracker>,
    metrics: &Metrics,
) -> Result<(), Error> {
    let post = PostParams {
        field_manager: Some(DEFAULT_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let track = |f: &dyn Fn(&mut SliceTracker)| {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut t);
    };
    for slice in &plan.create {
        let created = api
            .create(&post, slice)
            .await
            .map_err(|e| conflict_or(e, "(new)"))?;
        track(&|t| t.wrote(service, &created));
        metrics.slice_written("create");
    }
    for slice in &plan.update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        // A replace carrying the cached resourceVersion: a conflict means our cache was behind.
        let updated = api
            .replace(&name, &post, slice)
            .await
            .map_err(|e| conflict_or(e, &name))?;
        track(&|t| t.wrote(service, &updated));
        metrics.slice_written("update");
    }
    for gone in &plan.delete {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: gone.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&gone.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(conflict_or(e, &gone.name)),
        }
        if let Some(uid) = &gone.uid {
            track(&|t| t.deleted(service, uid));
        }
        metrics.slice_written("delete");
    }
    Ok(())
}
