//! The allocation work done by one replica at a time (the Lease holder) and at start by all.
//!
//! - At start, every replica adopts the values existing Services hold before its webhook reports
//!   ready, so a book lost or never written is rebuilt from the Services.
//! - The leader follows the Services: values no Service holds any more (a Service deleted, a port
//!   removed, a type changed) are released at once, unless a reservation covers them.
//! - The leader runs repair every `interval` ([`super::repair`]) and follows the ranges asked for by
//!   svcnet's configuration (a changed range keeps every value that still fits; values outside are
//!   reported and stay with their Services), and reports usage and conditions in its status.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use svcnet_allocator::PortRange;
use svcnet_crds::{SvcnetConfig, SvcnetConfigStatus, config::RangeUsage};

use super::book::Ranges;
use super::holders::Holders;
use super::plan::{Held, held_by};
use super::repair::{self, Findings, Memory};
use super::store::Store;
use super::{ranges, tls};
use crate::Error;
use crate::metrics::Metrics;
use svcnet_crds::CONFIG_NAME;

/// Where ranges come from besides the configuration resource.
#[derive(Clone, Debug)]
pub struct RangeFlags {
    pub cidrs: Vec<IpNet>,
    pub ports: PortRange,
}

/// What the leader needs.
#[allow(missing_debug_implementations)] // kube::Client has no Debug
pub struct Allocation {
    pub client: kube::Client,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub flags: RangeFlags,
    pub repair_interval: Duration,
    /// Passes that must see a leak before it is released.
    pub repair_passes: u32,
    /// The webhook configuration whose failurePolicy follows svcnet's configuration.
    pub webhook: Option<(String, tls::Endpoint)>,
}

/// How often usage is published (metrics, and the configuration's status when it changed).
const STATUS_INTERVAL: Duration = Duration::from_secs(5);

fn key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.namespace().unwrap_or_default(),
        service.name_any()
    )
}

fn held(service: &Service) -> Vec<Held> {
    service.spec.as_ref().map(held_by).unwrap_or_default()
}

/// The apiserver's Service CIDRs, the default `kubernetes` ServiceCIDR's first.
pub async fn service_cidrs(client: &kube::Client) -> Vec<IpNet> {
    let api: Api<ServiceCIDR> = Api::all(client.clone());
    let mut list = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list ServiceCIDRs");
            return Vec::new();
        }
    };
    list.sort_by_key(|s| s.name_any() != "kubernetes");
    list.iter()
        .flat_map(|s| s.spec.iter().flat_map(|spec| spec.cidrs.iter().flatten()))
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// The ranges asked for now, and the configuration object when there is one.
pub async fn desired_ranges(
    client: &kube::Client,
    flags: &RangeFlags,
) -> Result<(Ranges, Option<SvcnetConfig>, Vec<IpNet>), Error> {
    let api: Api<SvcnetConfig> = Api::all(client.clone());
    // No CRD installed reads as no configuration.
    let config = api.get_opt(CONFIG_NAME).await.ok().flatten();
    let cidrs = service_cidrs(client).await;
    let ranges = ranges::desired(
        config.as_ref().map(|c| &c.spec),
        &flags.cidrs,
        flags.ports,
        &cidrs,
    )?;
    Ok((ranges, config, cidrs))
}

/// Loads (or creates) the book and adopts what existing Services hold; the webhook may then answer.
pub async fn prepare(
    client: &kube::Client,
    store: &Store,
    flags: &RangeFlags,
) -> Result<(), Error> {
    let (ranges, _, _) = desired_ranges(client, flags).await?;
    store.load_or_create(&ranges).await?;
    let services: Api<Service> = Api::all(client.clone());
    let mut values: Vec<Held> = services
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .flat_map(held)
        .collect();
    values.sort();
    values.dedup();
    let count = values.len();
    let adopted = store
        .update(false, move |book| {
            let mut next = book.clone();
            let n = values
                .iter()
                .filter(|v| !book.has(**v) && next.adopt(**v))
                .count();
            Ok((next, n))
        })
        .await?
        .unwrap_or(0);
    tracing::info!(services_values = count, adopted, "allocation state ready");
    Ok(())
}

/// Leads until the Service watch ends.
pub async fn run(allocation: Allocation) {
    let services: Api<Service> = Api::all(allocation.client.clone());
    let mut service_events = watcher(services, watcher::Config::default())
        .default_backoff()
        .ready_chunks(512)
        .boxed();
    let configs: Api<SvcnetConfig> = Api::all(allocation.client.clone());
    let mut config_events = watcher(
        configs,
        watcher::Config::default().fields(&format!("metadata.name={CONFIG_NAME}")),
    )
    .default_backoff()
    .boxed();
    let recorder = Recorder::new(
        allocation.client.clone(),
        Reporter {
            controller: "svcnet-controller".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let mut leader = LeaderState {
        allocation,
        recorder,
        holders: Holders::default(),
        memory: Memory::default(),
        reported: BTreeSet::new(),
        service_cidrs: Vec::new(),
    };
    let mut relisting: Option<Holders> = None;
    let mut synced = false;
    let mut tick = tokio::time::interval(leader.allocation.repair_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Usage moves with every Service; the status follows within seconds, written only on change.
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            batch = service_events.next() => {
                let Some(batch) = batch else { return };
                let mut freed = Vec::new();
                let mut seen = Vec::new();
                for event in batch {
                    match event {
                        Ok(watcher::Event::Init) => relisting = Some(Holders::default()),
                        Ok(watcher::Event::InitApply(s)) => {
                            if let Some(h) = relisting.as_mut() {
                                h.set(&key(&s), held(&s));
                            }
                        }
                        Ok(watcher::Event::InitDone) => {
                            if let Some(h) = relisting.take() {
                                leader.holders = h;
                            }
                            synced = true;
                        }
                        Ok(watcher::Event::Apply(s)) => {
                            freed.extend(leader.holders.set(&key(&s), held(&s)));
                            seen.push((key(&s), held(&s)));
                        }
                        Ok(watcher::Event::Delete(s)) => freed.extend(leader.holders.remove(&key(&s))),
                        Err(e) => tracing::warn!(error = %e, "Service watch"),
                    }
                }
                if !freed.is_empty() || !seen.is_empty() {
                    leader.release(freed, seen).await;
                }
            }
            event = config_events.next() => {
                if event.is_none() { return }
                if synced {
                    leader.follow_ranges().await;
                }
            }
            _ = status_tick.tick(), if synced => leader.publish_status().await,
            _ = tick.tick(), if synced => {
                leader.follow_ranges().await;
                leader.repair().await;
            }
        }
    }
}

struct LeaderState {
    allocation: Allocation,
    recorder: Recorder,
    holders: Holders,
    memory: Memory,
    /// (Service, reason, value) already recorded as an Event.
    reported: BTreeSet<(String, &'static str, String)>,
    /// The apiserver's ServiceCIDRs as last read by `follow_ranges`, for the status.
    service_cidrs: Vec<IpNet>,
}

impl LeaderState {
    /// Settles the reservations of values now seen on Services (adopting those the apiserver chose
    /// while the webhook was unreachable, so they are not handed out again), and releases values
    /// nobody holds, unless a reservation covers them (a new Service is about to).
    async fn release(&mut self, freed: Vec<Held>, seen: Vec<(String, Vec<Held>)>) {
        let result = self
            .allocation
            .store
            .update(false, move |book| {
                let mut next = book.clone();
                for (_, values) in &seen {
                    next.seen_held(values);
                }
                let n = freed
                    .iter()
                    .filter(|v| !next.is_pending(**v) && next.release(**v))
                    .count();
                Ok((next, n))
            })
            .await;
        match result {
            Ok(Ok(n)) => tracing::debug!(released = n, "released values no Service holds"),
            Ok(Err(_)) => {}
            // Repair finds them again.
            Err(e) => tracing::warn!(error = %e, "releasing values failed"),
        }
    }

    /// One repair pass over the book read first and the Services listed after, so a value granted
    /// before the read and committed on a Service shows up in the list (the watch may lag).
    async fn repair(&mut self) {
        let book = match self.allocation.store.refresh().await {
            Ok(book) => book,
            Err(e) => {
                tracing::warn!(error = %e, "repair: cannot read the allocation state");
                return;
            }
        };
        let services: Api<Service> = Api::all(self.allocation.client.clone());
        let listed = match services.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!(error = %e, "repair: cannot list Services");
                return;
            }
        };
        let mut holders = Holders::default();
        for s in &listed {
            holders.set(&key(s), held(s));
        }
        let findings = repair::pass(
            &book,
            &holders,
            &mut self.memory,
            self.allocation.repair_passes,
        );
        let findings = Arc::new(findings);
        if findings.changes_book() {
            let decided = findings.clone();
            let result = self
                .allocation
                .store
                .update(false, move |book| {
                    let mut next = book.clone();
                    repair::apply(&mut next, &decided);
                    Ok((next, ()))
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "repair: cannot write the allocation state");
                return;
            }
        }
        let metrics = &self.allocation.metrics;
        metrics.repaired("adopted", findings.adopt.len());
        metrics.repaired("released", findings.release.len());
        if !findings.adopt.is_empty() || !findings.release.is_empty() {
            tracing::info!(
                adopted = ?findings.adopt,
                released = ?findings.release,
                suspected_leaks = findings.suspected_leaks,
                "repair"
            );
        }
        self.report(&findings).await;
        self.publish_status().await;
    }

    /// Events for values outside the ranges and values held twice, once each.
    async fn report(&mut self, findings: &Findings) {
        let mut notes: Vec<(String, &'static str, String, String)> = Vec::new();
        for (service, value) in &findings.out_of_range {
            notes.push((
                service.clone(),
                "AllocationOutOfRange",
                show(*value),
                format!(
                    "{} is outside svcnet's ranges; the Service keeps it, but svcnet does not track it",
                    show(*value)
                ),
            ));
        }
        for (value, services) in &findings.duplicates {
            for service in services {
                notes.push((
                    service.clone(),
                    "DuplicateAllocation",
                    show(*value),
                    format!("{} is also held by {}", show(*value), services.join(", ")),
                ));
            }
        }
        let current: BTreeSet<(String, &'static str, String)> = notes
            .iter()
            .map(|(s, r, v, _)| (s.clone(), *r, v.clone()))
            .collect();
        for (service, reason, value, note) in notes {
            if self
                .reported
                .contains(&(service.clone(), reason, value.clone()))
            {
                continue;
            }
            let metric = if reason == "DuplicateAllocation" {
                "duplicate"
            } else {
                "out_of_range"
            };
            self.allocation.metrics.repaired(metric, 1);
            tracing::warn!(service, reason, value, "{note}");
            let (namespace, name) = service.split_once('/').unwrap_or(("", &service));
            let reference = ObjectRef::<Service>::new(name).within(namespace);
            let event = Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note: Some(note),
                action: "Repair".into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &reference.into()).await {
                tracing::debug!(error = %e, "event not recorded");
            }
        }
        self.reported = current;
    }

    /// Moves the book to the ranges asked for, when they changed; keeps the webhook's failurePolicy
    /// in line with the configuration.
    async fn follow_ranges(&mut self) {
        let (wanted, config, cidrs) =
            match desired_ranges(&self.allocation.client, &self.allocation.flags).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "ranges unchanged");
                    return;
                }
            };
        if let Some((name, endpoint)) = &self.allocation.webhook {
            let policy = config
                .as_ref()
                .map(|c| c.spec.webhook.failure_policy.as_str());
            if let Some(policy) = policy
                && let Err(e) =
                    tls::configure(&self.allocation.client, name, endpoint, None, Some(policy))
                        .await
            {
                tracing::warn!(error = %e, "cannot set the webhook's failurePolicy");
            }
        }
        self.service_cidrs = cidrs;
        let Some(book) = self.allocation.store.book().await else {
            return;
        };
        if book.ranges() == wanted {
            return;
        }
        // Values Services hold that fit the new ranges are adopted at once: a grown range must not
        // hand them out again before the next repair.
        let held: Vec<Held> = self
            .holders
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let target = wanted.clone();
        let result = self
            .allocation
            .store
            .update(false, move |book| {
                let (mut next, dropped) = book
                    .with_ranges(&target)
                    .map_err(|e| super::plan::Denial(e.to_string()))?;
                for v in &held {
                    next.adopt(*v);
                }
                Ok((next, dropped))
            })
            .await;
        match result {
            Ok(Ok(dropped)) => {
                let held: Vec<String> = dropped
                    .iter()
                    .filter(|v| self.holders.is_held(**v))
                    .map(|v| show(*v))
                    .collect();
                tracing::info!(ranges = ?wanted, outside_and_kept_by_services = ?held, "ranges changed");
                self.publish_status().await;
            }
            Ok(Err(denial)) => tracing::warn!(reason = %denial, "ranges unchanged"),
            Err(e) => tracing::warn!(error = %e, "ranges unchanged"),
        }
    }

    /// Usage metrics, and the configuration's status when it exists.
    async fn publish_status(&mut self) {
        let Some(book) = self.allocation.store.book().await else {
            return;
        };
        let usage = book.usage();
        self.allocation.metrics.usage(&usage);
        let api: Api<SvcnetConfig> = Api::all(self.allocation.client.clone());
        let Ok(Some(config)) = api.get_opt(CONFIG_NAME).await else {
            return;
        };
        // Read by follow_ranges on every configuration change and repair pass; here only if not yet.
        if self.service_cidrs.is_empty() {
            self.service_cidrs = service_cidrs(&self.allocation.client).await;
        }
        let cidrs = &self.service_cidrs;
        let outside = ranges::outside(&book.ranges(), cidrs);
        let out_of_range: Vec<String> = self
            .holders
            .iter()
            .flat_map(|(_, values)| values.iter().copied())
            .filter(|v| !book.in_range(*v))
            .map(show)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let generation = config.meta().generation;
        let previous: HashMap<String, Condition> = config
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .map(|c| (c.type_.clone(), c.clone()))
            .collect();
        let condition = |type_: &str, ok: bool, reason: &str, message: String| {
            let status = if ok { "True" } else { "False" };
            let since = previous
                .get(type_)
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
            Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message,
                observed_generation: generation,
                last_transition_time: since,
            }
        };
        let inside = condition(
            "RangesInsideServiceCIDRs",
            outside.is_empty(),
            if outside.is_empty() {
                "Inside"
            } else {
                "Outside"
            },
            if outside.is_empty() {
                format!("every range is inside the apiserver's ServiceCIDRs {cidrs:?}")
            } else {
                format!(
                    "{outside:?} not inside the apiserver's ServiceCIDRs {cidrs:?}: the apiserver refuses addresses from there"
                )
            },
        );
        let ready = condition(
            "Ready",
            outside.is_empty(),
            if outside.is_empty() {
                "Allocating"
            } else {
                "RangesOutsideServiceCIDRs"
            },
            if out_of_range.is_empty() {
                "allocating from the configured ranges".to_owned()
            } else {
                format!(
                    "allocating from the configured ranges; Services keep values outside them: {}",
                    out_of_range.join(", ")
                )
            },
        );
        let status = SvcnetConfigStatus {
            observed_generation: generation,
            conditions: vec![ready, inside],
            ranges: usage
                .iter()
                .map(|(range, used, free)| RangeUsage {
                    range: range.clone(),
                    allocated: *used as u64,
                    free: *free as u64,
                })
                .collect(),
        };
        if config.status.as_ref() == Some(&status) {
            return;
        }
        let patch = serde_json::json!({ "status": status });
        if let Err(e) = api
            .patch_status(CONFIG_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(error = %e, "cannot write the configuration's status");
        }
    }
}

fn show(value: Held) -> String {
    match value {
        Held::Ip(ip) => ip.to_string(),
        Held::Port(p) => format!("NodePort {p}"),
    }
}
