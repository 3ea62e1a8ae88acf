//! How svcnet is installed on the cluster under test: beside it as addons (`svcnet-cluster
//! start-svcnet`, the default), or with the Helm chart (`scripts/install-svcnet.sh`, with
//! `SVCNET_INSTALL=helm`). Tests that start and stop svcnet's processes themselves run only with
//! addons; scripts/e2e.sh skips them in the Helm phase.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use crate::error::Result;
use crate::kit::addons::{MAIN_CONTROLLER, http_get};
use crate::wait::poll_until;

/// The namespace and release name scripts/install-svcnet.sh uses.
pub const HELM_NAMESPACE: &str = "svcnet";
pub const HELM_RELEASE: &str = "svcnet";

/// Whether the suite runs against the Helm-installed svcnet.
pub fn with_helm() -> bool {
    std::env::var("SVCNET_INSTALL").is_ok_and(|v| v == "helm")
}

/// The directory holding the pinned kubectl and helm (`scripts/install-tools.sh` installs them once).
pub fn tools_dir() -> Result<std::path::PathBuf> {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("bash")
        .arg(repo.join("scripts/install-tools.sh"))
        .output()?;
    if !out.status.success() {
        return Err(crate::Error::invalid(
            "scripts/install-tools.sh",
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok(std::path::PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim(),
    ))
}

/// Waits until the controller addon serving HTTP on 127.0.0.1:`port` answers `/readyz` with 200.
pub async fn wait_addon_ready(port: u16, timeout: Duration) -> Result<()> {
    poll_until(
        &format!("controller on :{port} ready"),
        timeout,
        || async move { http_get(port, "/readyz").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) },
    )
    .await
}

/// Waits until svcnet-controller is ready: the main addon's `/readyz`, or every replica of the
/// chart's Deployment.
pub async fn wait_controller_ready(client: &kube::Client, timeout: Duration) -> Result<()> {
    if with_helm() {
        let api: Api<Deployment> = Api::namespaced(client.clone(), HELM_NAMESPACE);
        let name = format!("{HELM_RELEASE}-controller");
        return poll_until("the chart's controller Deployment ready", timeout, || {
            let api = api.clone();
            let name = name.clone();
            async move {
                api.get_opt(&name).await.ok().flatten().is_some_and(|d| {
                    let want = d.spec.and_then(|s| s.replicas).unwrap_or(1);
                    d.status.and_then(|s| s.ready_replicas).unwrap_or(0) >= want
                })
            }
        })
        .await;
    }
    wait_addon_ready(MAIN_CONTROLLER.1, timeout).await
}
