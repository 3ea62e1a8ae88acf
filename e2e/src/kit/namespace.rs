//! A fresh, labelled namespace per test, deleted afterwards; on failure its pods, Services and
//! EndpointSlices are printed first.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use serde_json::json;

use crate::error::{Error, Result};

/// Label on every namespace a test makes.
pub const TEST_LABEL: &str = "e2e.svcnet.dev/test";

#[derive(Clone)]
pub struct TestNamespace {
    pub client: kube::Client,
    pub name: String,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl TestNamespace {
    /// Creates `<prefix>-<random>` and returns it.
    pub async fn create(client: &kube::Client, prefix: &str) -> Result<Self> {
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "generateName": format!("{prefix}-"), "labels": { TEST_LABEL: prefix } }
        }))
        .map_err(|e| Error::invalid("namespace", e))?;
        let created = api.create(&PostParams::default(), &ns).await?;
        Ok(TestNamespace {
            client: client.clone(),
            name: created.metadata.name.unwrap_or_default(),
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Applies every document of a YAML manifest in this namespace (server-side apply).
    pub async fn apply_yaml(&self, yaml: &str) -> Result<()> {
        let docs: Vec<DynamicObject> =
            serde_saphyr::from_multiple(yaml).map_err(|e| Error::invalid("manifest", e))?;
        let discovery = Discovery::new(self.client.clone()).run().await?;
        for doc in docs {
            let types = doc
                .types
                .clone()
                .ok_or_else(|| Error::invalid("manifest", "a document has no apiVersion/kind"))?;
            let gvk = kube::api::GroupVersionKind::try_from(&types)
                .map_err(|e| Error::invalid("manifest", e))?;
            let (resource, caps): (ApiResource, _) = discovery
                .resolve_gvk(&gvk)
                .ok_or_else(|| Error::invalid("manifest", format!("unknown kind {gvk:?}")))?;
            let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
                Api::namespaced_with(self.client.clone(), &self.name, &resource)
            } else {
                Api::all_with(self.client.clone(), &resource)
            };
            let name = doc.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("svcnet-e2e").force(),
                &Patch::Apply(&doc),
            )
            .await?;
        }
        Ok(())
    }

    /// Prints what a failing test needs to see.
    pub async fn dump(&self) {
        let lp = ListParams::default();
        eprintln!("==== namespace {} ====", self.name);
        if let Ok(pods) = self.api::<Pod>().list(&lp).await {
            for p in pods {
                let s = p.status.unwrap_or_default();
                eprintln!(
                    "pod {} node={:?} phase={:?} ip={:?} deleting={}",
                    p.metadata.name.unwrap_or_default(),
                    p.spec.and_then(|s| s.node_name),
                    s.phase,
                    s.pod_ip,
                    p.metadata.deletion_timestamp.is_some(),
                );
            }
        }
        if let Ok(svcs) = self.api::<Service>().list(&lp).await {
            for s in svcs {
                eprintln!(
                    "service {}: {:?}",
                    s.metadata.name.clone().unwrap_or_default(),
                    s.spec
                );
            }
        }
        if let Ok(slices) = self.api::<EndpointSlice>().list(&lp).await {
            for s in slices {
                eprintln!(
                    "endpointslice {}: {}",
                    s.metadata.name.clone().unwrap_or_default(),
                    serde_json::to_string(&s.endpoints).unwrap_or_default()
                );
            }
        }
    }

    /// Deletes the namespace (without waiting for it to be gone).
    pub async fn delete(&self) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `test` in a fresh namespace; dumps the namespace when the test fails or panics, deletes it in
/// every case, then passes the outcome on.
pub async fn with_namespace<F, Fut>(client: &kube::Client, prefix: &str, test: F) -> Result<()>
where
    F: FnOnce(TestNamespace) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let ns = TestNamespace::create(client, prefix).await?;
    let outcome = AssertUnwindSafe(test(ns.clone())).catch_unwind().await;
    if !matches!(outcome, Ok(Ok(()))) {
        ns.dump().await;
    }
    ns.delete().await?;
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
