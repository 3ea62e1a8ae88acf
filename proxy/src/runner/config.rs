//! Follows svcnet's configuration resource (`SvcnetConfig` named `default`) and publishes its proxy
//! settings: `None` while it is absent or unreadable (no CRD), and then the flags apply.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use svcnet_crds::SvcnetConfig;
use svcnet_crds::config::ProxySettings;
use tokio::sync::{Notify, watch};

use svcnet_crds::CONFIG_NAME;

/// The settings right now, read before the first sync so that it already uses them.
pub async fn current(client: &kube::Client) -> Option<ProxySettings> {
    let api: Api<SvcnetConfig> = Api::all(client.clone());
    api.get_opt(CONFIG_NAME)
        .await
        .ok()
        .flatten()
        .map(|c| c.spec.proxy)
}

/// Follows the object for good: publishes its settings to `tx` and pokes `changed` when they change.
pub async fn follow(
    client: kube::Client,
    tx: watch::Sender<Option<ProxySettings>>,
    changed: Arc<Notify>,
) {
    let api: Api<SvcnetConfig> = Api::all(client);
    let selector = format!("metadata.name={CONFIG_NAME}");
    let mut events = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    // During a relist: whether the object showed up.
    let mut listed = None;
    while let Some(event) = events.next().await {
        let next = match event {
            Ok(watcher::Event::Init) => {
                listed = Some(None);
                continue;
            }
            Ok(watcher::Event::InitApply(config)) => {
                listed = Some(Some(config.spec.proxy));
                continue;
            }
            Ok(watcher::Event::InitDone) => listed.take().flatten(),
            Ok(watcher::Event::Apply(config)) => Some(config.spec.proxy),
            Ok(watcher::Event::Delete(_)) => None,
            Err(e) => {
                // Usually: the CRD is not installed. The settings stay as they were.
                tracing::debug!(error = %e, "svcnet configuration not readable");
                continue;
            }
        };
        if tx.send_if_modified(|current| {
            let modified = *current != next;
            *current = next;
            modified
        }) {
            tracing::info!("proxy settings changed");
            changed.notify_one();
        }
    }
}
