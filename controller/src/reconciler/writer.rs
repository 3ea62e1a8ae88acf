//! Applies a [`SlicePlan`]: creates first (so no endpoint is ever missing), then updates, then deletes.
//! Every write is recorded in the tracker, for the stale-cache guard. Creates and updates go in
//! protobuf, as kube-controller-manager's do (see [`slice_protobuf`](super::slice_protobuf)).

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::core::{Request, Status};

use super::slice_protobuf::{self, Answer};
use super::tracker::SliceTracker;
use crate::Error;
use crate::endpointslice::trigger_time::{self, ANNOTATION_LAST_CHANGE_TRIGGER_TIME};
use crate::endpointslice::{DEFAULT_MANAGER, SlicePlan};
use crate::metrics::Metrics;

fn conflict_or(e: Error, name: &str) -> Error {
    match e {
        Error::Kube(kube::Error::Api(ref status)) if status.code == 409 => {
            Error::Conflict(name.to_owned())
        }
        other => other,
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

/// A create (`name` None) or an update of `slice` in namespace `ns`, sent and answered in protobuf:
/// the written slice's metadata. A failure is the apiserver's status (code, reason, message), as
/// kube's own calls give it.
async fn write(
    client: &kube::Client,
    ns: &str,
    name: Option<&str>,
    params: &PostParams,
    slice: &EndpointSlice,
) -> Result<ObjectMeta, Error> {
    let request = Request::new(EndpointSlice::url_path(&(), Some(ns)));
    let body = slice_protobuf::encode(slice);
    let built = match name {
        Some(name) => request.replace(name, params, body),
        None => request.create(params, body),
    };
    let mut http_request = built.map_err(kube::Error::BuildRequest)?;
    let headers = http_request.headers_mut();
    let protobuf = http::HeaderValue::from_static(slice_protobuf::CONTENT_TYPE);
    headers.insert(http::header::CONTENT_TYPE, protobuf.clone());
    headers.insert(http::header::ACCEPT, protobuf);
    let response = client.send(http_request.map(Into::into)).await?;
    let code = response.status().as_u16();
    let body = response.into_body().collect_bytes().await?;
    let answer = slice_protobuf::decode(&body);
    if !(200..300).contains(&code) {
        let status = match answer {
            Ok(Answer::Failed(s)) => Status::failure(
                s.message.as_deref().unwrap_or_default(),
                s.reason.as_deref().unwrap_or_default(),
            ),
            // Not from the apiserver's handlers (a proxy, an early rejection): the text as it is.
            _ => Status::failure(String::from_utf8_lossy(&body).trim(), "UnreadableAnswer"),
        };
        return Err(Error::Kube(kube::Error::Api(
            status.with_code(code).boxed(),
        )));
    }
    match answer? {
        Answer::Written(meta) => Ok(*meta),
        Answer::Failed(_) => Err(Error::Protobuf(format!(
            "a Status in a successful answer ({code})"
        ))),
    }
}

pub async fn apply(
    client: &kube::Client,
    ns: &str,
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
        let created = write(client, ns, None, &post, &stamped(slice, trigger))
            .await
            .map_err(|e| conflict_or(e, "(new)"))?;
        track(&|t| t.wrote(service, &created));
        metrics.slice_written("create");
    }
    for slice in &plan.update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        // A replace carrying the cached resourceVersion: a conflict means our cache was behind.
        let updated = write(client, ns, Some(&name), &post, &stamped(slice, trigger))
            .await
            .map_err(|e| conflict_or(e, &name))?;
        track(&|t| t.wrote(service, &updated));
        metrics.slice_written("update");
    }
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
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
            Err(e) => return Err(conflict_or(e.into(), &gone.name)),
        }
        if let Some(uid) = &gone.uid {
            track(&|t| t.deleted(service, uid));
        }
        metrics.slice_written("delete");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::{Method, Response};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::client::Body;

    fn slice() -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some("web-abcde".into()),
                namespace: Some("shop".into()),
                resource_version: Some("41".into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            ..EndpointSlice::default()
        }
    }

    /// A client whose apiserver checks that the update is a protobuf PUT of the slice and answers
    /// with `status` and `body`.
    fn client(status: u16, body: Vec<u8>) -> kube::Client {
        let service = tower::service_fn(move |request: http::Request<Body>| {
            let body = body.clone();
            async move {
                assert_eq!(request.method(), Method::PUT);
                assert_eq!(
                    request.uri().path(),
                    "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-abcde"
                );
                let query = request.uri().query().unwrap_or_default();
                assert!(query.contains("fieldManager=svcnet-controller"), "{query}");
                for header in [http::header::CONTENT_TYPE, http::header::ACCEPT] {
                    assert_eq!(
                        request.headers()[&header],
                        "application/vnd.kubernetes.protobuf"
                    );
                }
                let sent = request.into_body().collect_bytes().await.unwrap();
                assert_eq!(sent.as_ref(), slice_protobuf::encode(&slice()).as_slice());
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .status(status)
                        .body(Body::from(body))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    fn params() -> PostParams {
        PostParams {
            field_manager: Some(DEFAULT_MANAGER.to_owned()),
            ..PostParams::default()
        }
    }

    #[tokio::test]
    async fn an_update_goes_in_protobuf_and_gives_the_written_metadata() {
        let mut written = slice();
        written.metadata.uid = Some("u-1".into());
        written.metadata.generation = Some(2);
        let client = client(200, slice_protobuf::encode(&written));
        let meta = write(&client, "shop", Some("web-abcde"), &params(), &slice())
            .await
            .unwrap();
        assert_eq!(
            (meta.uid.as_deref(), meta.generation),
            (Some("u-1"), Some(2))
        );
    }

    #[tokio::test]
    async fn a_conflict_in_protobuf_is_a_conflict() {
        let client = client(409, slice_protobuf::status_body(409));
        let err = write(&client, "shop", Some("web-abcde"), &params(), &slice())
            .await
            .map_err(|e| conflict_or(e, "web-abcde"))
            .unwrap_err();
        assert!(
            matches!(err, Error::Conflict(ref name) if name == "web-abcde"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failure_that_is_not_protobuf_keeps_its_code_and_text() {
        let client = client(503, b"upstream connect error".to_vec());
        let err = write(&client, "shop", Some("web-abcde"), &params(), &slice())
            .await
            .unwrap_err();
        match err {
            Error::Kube(kube::Error::Api(status)) => {
                assert_eq!(status.code, 503);
                assert_eq!(status.message, "upstream connect error");
            }
            other => panic!("{other}"),
        }
    }
}
