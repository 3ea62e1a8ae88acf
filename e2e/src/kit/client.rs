//! A client for the local cluster (or any cluster `KUBECONFIG` names).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};
use crate::inventory::StateDir;

pub async fn from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|e| Error::invalid(path.display().to_string(), e))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::invalid(path.display().to_string(), e))?;
    Ok(kube::Client::try_from(config)?)
}

/// The local cluster's admin client (from its state directory), or `KUBECONFIG`'s when that is set
/// and the local cluster is not up.
pub async fn connect() -> Result<kube::Client> {
    let local = StateDir::from_env().kubeconfig();
    if local.exists() {
        return from_kubeconfig(&local).await;
    }
    kube::Client::try_default().await.map_err(Error::from)
}
