//! The proxy's thin edge: watch Services, EndpointSlices and the own Node; after every burst of
//! changes (at most one sync per `min_sync_period`), compile each family against what was last
//! committed and apply the transaction. A failed transaction drops the committed state, so the next
//! sync is a full one.

pub mod changes;
pub mod config;
pub mod health_check;
pub mod metrics;
pub mod netlink_socket;
pub mod nft;
pub mod translate;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

use crate::latency::{self, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ChangeTimes};
use crate::model::{Family, ProxyConfig, State};
use crate::settings::with_settings;
use crate::{Committed, Error, compile_changed, compile_from};
use changes::Changes;
use svcnet_crds::config::ProxySettings;
use translate::{remember, translate};

#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's name (the Node object to read addresses and zone from).
    pub node_name: String,
    /// The base configuration; node IPs and zone are filled in from the Node.
    pub config: ProxyConfig,
    pub families: Vec<Family>,
    /// At most one sync per this period (bursts coalesce).
    pub min_sync_period: Duration,
}

/// Feeds a reflector from a watch, shows `observe` every event and pokes `changed`.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changed: Arc<Notify>,
    observe: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> (Store<K>, impl std::future::Future<Output = ()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        // Nothing reads them, and they are a large part of every object (kube-proxy drops them
        // too).
        .modify(|obj| obj.meta_mut().managed_fields = None)
        .reflect(writer)
        .for_each(move |event| {
            match event {
                Ok(event) => observe(&event),
                Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
            }
            changed.notify_one();
            async {}
        });
    (store, stream)
}

fn node_config(base: &ProxyConfig, node: Option<&Node>) -> ProxyConfig {
    let mut config = base.clone();
    if let Some(node) = node {
        config.node_ips = node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        config.node_zone = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("topology.kubernetes.io/zone").cloned());
    }
    config
}

/// Notes the last-change trigger time of each slice the watch applies.
fn note_trigger_times(times: &Mutex<ChangeTimes>, event: &watcher::Event<EndpointSlice>) {
    let mut times = times.lock().unwrap_or_else(|e| e.into_inner());
    match event {
        watcher::Event::Apply(slice) | watcher::Event::InitApply(slice) => {
            let annotation = slice
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_LAST_CHANGE_TRIGGER_TIME));
            times.note(
                slice.metadata.uid.as_deref().unwrap_or_default(),
                annotation.map(String::as_str),
            );
        }
        watcher::Event::Delete(slice) => {
            times.forget(slice.metadata.uid.as_deref().unwrap_or_default());
        }
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

/// The flags with the configuration resource's settings on top; the flags alone while those are
/// invalid (logged once per distinct error).
fn configured(
    flags: &ProxyConfig,
    svcnet_config: &tokio::sync::watch::Receiver<Option<ProxySettings>>,
    last_error: &mut Option<String>,
) -> ProxyConfig {
    let outcome = match svcnet_config.borrow().as_ref() {
        Some(s) => with_settings(flags, s),
        None => Ok(flags.clone()),
    };
    match outcome {
        Ok(config) => {
            *last_error = None;
            config
        }
        Err(e) => {
            let message = e.to_string();
            if last_error.as_ref() != Some(&message) {
                tracing::error!(
                    error = message,
                    "ignoring the SvcnetConfig's proxy settings"
                );
                *last_error = Some(message);
            }
            flags.clone()
        }
    }
}

/// Runs until a watch stream ends (they don't) or the process is stopped.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<metrics::Metrics>,
) -> Result<(), Error> {
    let changed = Arc::new(Notify::new());
    let touched = Arc::new(Mutex::new(Changes::new()));
    let noted = touched.clone();
    let (services, svc_watch) = reflect(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        changed.clone(),
        move |event| lock(&noted).service_event(event),
    );
    // Trigger times are noted as slices arrive: the work follows the changes, not every sync.
    let change_times = Arc::new(Mutex::new(ChangeTimes::new(
        k8s_openapi::jiff::Timestamp::now(),
    )));
    let (noted, noted_slices) = (change_times.clone(), touched.clone());
    let (slices, slice_watch) = reflect(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
        changed.clone(),
        move |event| {
            note_trigger_times(&noted, event);
            lock(&noted_slices).slice_event(event);
        },
    );
    let (nodes, node_watch) = reflect(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={}", settings.node_name)),
        changed.clone(),
        |_| {},
    );
    let (settings_tx, svcnet_config) = tokio::sync::watch::channel(config::current(&client).await);
    tokio::spawn(config::follow(client.clone(), settings_tx, changed.clone()));
    tokio::spawn(svc_watch);
    tokio::spawn(slice_watch);
    tokio::spawn(node_watch);
    // No rules until every cache has listed once: a partial view would drop live Services.
    let _ = tokio::join!(
        services.wait_until_ready(),
        slices.wait_until_ready(),
        nodes.wait_until_ready()
    );
    tracing::info!("caches synced");

    let families = settings.families.len();
    let mut committed: Vec<Option<Committed>> = vec![None; families];
    // Per family: the translation of the Services, kept and updated as they change.
    let mut desired: Vec<Option<State>> = vec![None; families];
    // Per family: the entries that changed since the last successful sync, as they were then (the
    // UDP flows of endpoints gone since are deleted once the rules no longer use them).
    let mut before: Vec<Option<State>> = vec![None; families];
    let mut health_checks = health_check::HealthChecks::default();
    let mut settings_error = None;
    loop {
        let started = Instant::now();
        let configured = configured(&settings.config, &svcnet_config, &mut settings_error);
        let config = node_config(&configured, nodes.state().first().map(AsRef::as_ref));
        let touched_now = lock(&touched).take();
        let eps = slices.state();
        let mut checks = std::collections::BTreeMap::new();
        for (i, family) in settings.families.iter().enumerate() {
            let (state, translated) = translate(
                desired[i].take(),
                &config,
                *family,
                &touched_now,
                &services,
                &eps,
            );
            let old = before[i].get_or_insert_with(|| State::new(*family, config.clone()));
            remember(old, translated.replaced);
            for (port, check) in health_check::wanted(&state) {
                let entry = checks.entry(port).or_insert_with(|| check.clone());
                entry.local_endpoints = entry.local_endpoints.max(check.local_endpoints);
            }
            // Taken: a failed transaction leaves it empty, so the next sync is a full one.
            let (transaction, next) = match &translated.keys {
                Some(keys) => compile_changed(&state, committed[i].take(), keys),
                None => compile_from(&state, committed[i].take()),
            };
            if transaction.is_empty() {
                committed[i] = Some(next);
                // The rules need nothing, but an endpoint may still have gone (a terminating one the
                // rules already skipped): its UDP flows go now.
                clear_stale_udp(before[i].take(), &state, &metrics).await;
                desired[i] = Some(state);
                continue;
            }
            let full = transaction.full;
            let labels = metrics::SyncLabels {
                kind: if full { "full" } else { "partial" }.to_owned(),
                family: family.nft().to_owned(),
            };
            // Element changes alone (an endpoint replaced) go straight to the kernel; the rest
            // through `nft -f`.
            let applied = match crate::netlink::element_batch(&transaction, 1) {
                Some(batch) => tokio::task::spawn_blocking(move || netlink_socket::send(&batch))
                    .await
                    .unwrap_or_else(|e| Err(Error::Nft(format!("netlink task: {e}")))),
                None => nft::apply(&transaction.to_string()).await,
            };
            metrics
                .sync_seconds
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
            match applied {
                Ok(()) => {
                    metrics
                        .transaction_lines
                        .get_or_create(&labels)
                        .set(i64::try_from(transaction.len()).unwrap_or(i64::MAX));
                    tracing::info!(
                        family = family.nft(),
                        full,
                        lines = transaction.len(),
                        took = ?started.elapsed(),
                        "synced"
                    );
                    committed[i] = Some(next);
                    // After the rules: new packets of a deleted flow must find the new endpoints.
                    clear_stale_udp(before[i].take(), &state, &metrics).await;
                }
                Err(e) => {
                    metrics.sync_failures.get_or_create(&labels).inc();
                    tracing::error!(family = family.nft(), error = %e, "sync failed; next sync is a full one");
                    committed[i] = None;
                    changed.notify_one();
                }
            }
            desired[i] = Some(state);
        }
        let synced = committed.iter().all(Option::is_some);
        metrics
            .healthy
            .store(synced, std::sync::atomic::Ordering::Relaxed);
        if synced {
            let now = k8s_openapi::jiff::Timestamp::now();
            let carried = change_times
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            for trigger in carried {
                metrics
                    .network_programming_seconds
                    .observe(latency::seconds_since(trigger, now));
            }
        }
        health_checks.reconcile(checks).await;
        changed.notified().await;
        // Rate limit: coalesce what arrives within the period after the last sync began.
        let next_allowed = started + settings.min_sync_period;
        tokio::time::sleep_until(next_allowed.into()).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deletes the UDP conntrack entries of endpoints that were listed in `before` and no longer serve.
async fn clear_stale_udp(before: Option<State>, after: &State, metrics: &metrics::Metrics) {
    let Some(before) = before else { return };
    let stale = crate::conntrack::stale_udp_flows(&before, after);
    if !stale.is_empty() {
        nft::delete_stale_flows(&stale).await;
        metrics.conntrack_deletions.inc_by(stale.len() as u64);
    }
}
