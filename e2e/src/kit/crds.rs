//! Installs svcnet's CRDs (generated into crds/yaml) on the cluster and waits until they serve.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

use crate::error::Result;
use crate::wait::poll_until;

/// Server-side applies every svcnet CRD and waits for each to be Established.
pub async fn install(client: &kube::Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in svcnet_crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("svcnet-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        poll_until(
            &format!("CRD {name} established"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    api.get_opt(&name).await.ok().flatten().is_some_and(|c| {
                        c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c.type_ == "Established" && c.status == "True")
                        })
                    })
                }
            },
        )
        .await?;
    }
    Ok(())
}
