//! Applies a [`SlicePlan`]: creates first (so no endpoint is ever missing), then updates, then deletes.
//! Every write is recorded in the tracker, for the stale-cache guard.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::tracker::SliceTracker;
use crate::Error;
use crate::endpointslice::trigger_time::{self, ANNOTATION_LAST_CHANGE_TRIGGER_TIME};
use crate::endpointslice::{DEFAULT_MANAGER, SlicePlan};
use crate::metrics::Metrics;

fn conflict_or(e: kube::Error, name: &str) -> Error {
    match e {
        kube::Error::Api(ref status) if status.code == 409 => Error::Conflict(name.to_owned()),
        other => Error::Kube(other),
    }
}

/// The slice with the last-change trigger time of this write (or without one, as upstream).
fn stamped(slice: &EndpointSlice, trigger: Option<Timestamp>) -> EndpointSlice {
    let mut slice = slice.clone();
    let annotations = slice
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    match trigger {
        Some(time) => {
            annotations.insert(
                ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_owned(),
                trigger_time::format(time),
            );
        }
        None => {
            annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if annotations.is_empty() {
        slice.metadata.annotations = None;
    }
    slice
}

pub async fn apply(
    api: &Api<EndpointSlice>,
    service: &str,
    plan: &SlicePlan,
    trigger: Option<Timestamp>,
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
            .create(&post, &stamped(slice, trigger))
            .await
            .map_err(|e| conflict_or(e, "(new)"))?;
        track(&|t| t.wrote(service, &created));
        metrics.slice_written("create");
    }
    for slice in &plan.update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        // A replace carrying the cached resourceVersion: a conflict means our cache was behind.
        let updated = api
            .replace(&name, &post, &stamped(slice, trigger))
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
