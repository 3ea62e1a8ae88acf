//! The EndpointSlice controller's thin edge: watches Services, Pods, Nodes and our own slices, and for
//! each Service plans ([`crate::endpointslice::plan`]) and writes ([`writer::apply`]).
//!
//! kube-runtime's controller gives us: a Service is never reconciled twice at once, many Services
//! reconcile in parallel (`concurrency`), triggers for the same Service coalesce (`debounce` is
//! `endpointUpdatesBatchPeriod`), and a failed Service is retried with backoff while others go on.

pub mod config;
pub mod grouped_cache;
pub mod interner;
pub mod pacer;
pub mod pod_cache;
pub mod service_cache;
pub mod slice_cache;
pub mod slice_protobuf;
pub mod tracker;
pub mod uid;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};

use crate::Error;
use crate::endpointslice::trigger_time::{TriggerTimes, service_trigger_time};
use crate::endpointslice::{self, DEFAULT_MANAGER, LABEL_MANAGED_BY, Options, PodView};
use crate::metrics::Metrics;
use grouped_cache::{GroupedCache, Grouping};
use interner::Interner;
use pacer::WritePacer;
use pod_cache::{CachedPod, Labels};
use slice_cache::CachedSlice;
use tracker::SliceTracker;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// From the flags; the configuration resource overrides them (see [`config`]).
    pub options: Options,
    /// Services reconciled at once.
    pub workers: u16,
    /// `endpointUpdatesBatchPeriod`: triggers for one Service within this period make one reconcile.
    pub batch_period: Duration,
    /// A write that only adds endpoints waits until this long after the Service's last write
    /// (see [`pacer`]).
    pub additions_interval: Duration,
}

struct Context {
    client: kube::Client,
    /// Pods by namespace.
    pods: Arc<GroupedCache<Pod, CachedPod>>,
    nodes: Store<Node>,
    /// Our slices by namespace and Service.
    slices: Arc<GroupedCache<EndpointSlice, CachedSlice>>,
    options: tokio::sync::watch::Receiver<Options>,
    tracker: Arc<Mutex<SliceTracker>>,
    pacer: Mutex<WritePacer>,
    trigger_times: Mutex<TriggerTimes>,
    failures: Mutex<HashMap<String, u32>>,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    /// Every store has listed once.
    synced: Arc<AtomicBool>,
}

fn key(svc: &Service) -> String {
    format!("{}/{}", svc.namespace().unwrap_or_default(), svc.name_any())
}

/// The tracker's key (`namespace/name`) of the Service a slice of ours belongs to.
fn slice_service(slice: &EndpointSlice) -> String {
    let service = slice
        .labels()
        .get(endpointslice::LABEL_SERVICE_NAME)
        .map_or("", String::as_str);
    format!("{}/{service}", slice.namespace().unwrap_or_default())
}

/// What the pod → Services mapping reads of a Service.
#[derive(Debug)]
struct Selecting {
    name: String,
    /// Empty when the Service has none: it selects no pod.
    selector: BTreeMap<String, String>,
}

impl Selecting {
    fn of(svc: &Service) -> Self {
        Selecting {
            name: svc.name_any(),
            selector: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default(),
        }
    }
}

/// Names of the Services in namespace `ns` whose selector matches `labels`.
fn services_selecting(
    selectors: &GroupedCache<Service, Selecting>,
    ns: &str,
    labels: &Labels,
) -> Vec<String> {
    let mut names = Vec::new();
    selectors.for_each(ns, None, |s| {
        if !s.selector.is_empty() && labels.matches(&s.selector) {
            names.push(s.name.clone());
        }
    });
    names
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    // The first passes may come before the other caches have listed once. (One task waits for the
    // stores; concurrent `wait_until_ready` calls on one store can miss their wake-up.)
    if !ctx.synced.load(Ordering::Acquire) {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let started = Instant::now();
    let key = key(&svc);
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    ctx.metrics.reconciles.inc();

    let mut existing: Vec<EndpointSlice> = Vec::new();
    ctx.slices
        .for_each(&ns, Some(&name), |s| existing.push(s.to_slice()));
    let stale = ctx
        .tracker
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_stale(&key, &existing.iter().collect::<Vec<_>>());
    if stale {
        tracing::debug!(service = %key, "cache behind our own writes; planning again in 100 ms");
        ctx.metrics.stale_cache_skips.inc();
        return Ok(Action::requeue(Duration::from_millis(100)));
    }

    let mut changes: Vec<_> = service_trigger_time(&svc).into_iter().collect();
    let mut pods: Vec<PodView> = Vec::new();
    if let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref())
        && !selector.is_empty()
    {
        ctx.pods.for_each(&ns, None, |p| {
            if p.labels.matches(selector) {
                changes.extend(p.trigger_time);
                pods.push(p.view());
            }
        });
    }
    let zones: BTreeMap<String, Option<String>> = ctx
        .nodes
        .state()
        .iter()
        .map(|n| endpointslice::node_zone(n))
        .collect();
    let options = ctx.options.borrow().clone();
    let plan = endpointslice::plan(&svc, &pods, &zones, &existing, &options);
    // A plan that only adds waits for the Service's last write to be `additions_interval` old,
    // unless the Service has no ready endpoint yet (see `pacer`).
    if !plan.is_empty()
        && !plan.takes_away()
        && endpointslice::has_ready_endpoint(&existing)
        && let Some(wait) = ctx
            .pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hold(&key, Instant::now())
    {
        tracing::debug!(service = %key, wait = ?wait, "only additions; held");
        ctx.metrics.paced_plans.inc();
        return Ok(Action::requeue(wait));
    }
    ctx.metrics
        .endpoints_added
        .inc_by(plan.endpoints_added as u64);
    ctx.metrics
        .endpoints_removed
        .inc_by(plan.endpoints_removed as u64);
    let (trigger, carried) = ctx
        .trigger_times
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pending(&key, changes);
    if !plan.is_empty() {
        tracing::debug!(service = %key, "writing slices");
        writer::apply(
            &ctx.client,
            &ns,
            &key,
            &plan,
            trigger,
            &ctx.tracker,
            &ctx.metrics,
        )
        .await?;
        ctx.pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wrote(&key, Instant::now());
        tracing::info!(
            service = %key,
            created = plan.create.len(),
            updated = plan.update.len(),
            deleted = plan.delete.len(),
            endpoints = pods.len(),
            "slices written"
        );
    }
    {
        let mut times = ctx.trigger_times.lock().unwrap_or_else(|e| e.into_inner());
        if svc.metadata.deletion_timestamp.is_some() || !endpointslice::selects_pods(&svc) {
            times.forget(&key);
        } else {
            times.carried(&key, carried);
        }
    }
    ctx.failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    ctx.metrics
        .sync_seconds
        .observe(started.elapsed().as_secs_f64());
    if !plan.pods_on_unknown_nodes.is_empty() {
        // Upstream retries these too: the Node shows up in the cache soon.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(Action::await_change())
}

/// Per-Service exponential backoff (100 ms doubling to 5 min), an Event on the Service and a metric;
/// other Services are not held up.
fn error_policy(svc: Arc<Service>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&svc);
    ctx.metrics.error(err.metric_label());
    let failures = {
        let mut f = ctx.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = match err {
        Error::Conflict(_) => Duration::from_millis(100),
        _ => Duration::from_millis(100)
            .saturating_mul(1 << failures.min(12))
            .min(Duration::from_secs(300)),
    };
    tracing::warn!(service = %key, error = %err, failures, retry_in = ?delay, "reconcile failed");
    if !matches!(err, Error::Conflict(_)) {
        let recorder = ctx.recorder.clone();
        let reference = svc.object_ref(&());
        let note = err.to_string();
        tokio::spawn(async move {
            let event = Event {
                type_: EventType::Warning,
                reason: "FailedToUpdateEndpointSlices".into(),
                note: Some(note),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %e, "event not recorded");
            }
        });
    }
    Action::requeue(delay)
}

/// Runs the controller until its watches end (they don't, short of a fatal error).
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    on_synced: impl FnOnce() + Send + 'static,
) {
    let watch = watcher::Config::default();
    let ours = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={DEFAULT_MANAGER}"));

    let shared = pod_cache::Shared::default();
    let pods = GroupedCache::new(Grouping::Namespace, move |pod: &Pod| {
        CachedPod::of(pod, &shared)
    });
    let pods_fed = pods.clone();
    // A pod whose labels change may leave a Service: its labels before the change (by uid), for the
    // mapping below, as upstream maps both the old and the new object of an update.
    let relabelled: Arc<Mutex<HashMap<String, Arc<Labels>>>> = Arc::default();
    let relabelled_fed = relabelled.clone();
    let pod_stream = watcher(Api::<Pod>::all(client.clone()), watch.clone())
        .default_backoff()
        .modify(pod_cache::strip_pod)
        .inspect_ok(move |event| {
            let before = pods_fed.apply(event);
            if let (watcher::Event::Apply(pod), Some(before)) = (event, &before)
                && tracing::enabled!(tracing::Level::DEBUG)
            {
                // For following one change through: when its pod event arrived here.
                let ready = PodView::from_pod(pod).ready;
                if ready != before.view().ready {
                    tracing::debug!(pod = %ObjectRef::from_obj(pod), ready, "pod readiness changed");
                }
            }
            if let (watcher::Event::Apply(pod) | watcher::Event::InitApply(pod), Some(before)) =
                (event, before)
                && !before.labels.same_as(pod.labels())
            {
                relabelled_fed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(pod.uid().unwrap_or_default(), before.labels.clone());
            }
        })
        .touched_objects();
    let (nodes, node_writer) = reflector::store();
    let node_stream = watcher(Api::<Node>::all(client.clone()), watch.clone())
        .default_backoff()
        .reflect(node_writer)
        .touched_objects()
        .predicate_filter(predicates::labels, Default::default());
    let tracker: Arc<Mutex<SliceTracker>> = Arc::default();
    let tracker_fed = tracker.clone();
    let strings = Interner::default();
    let slices = GroupedCache::new(
        Grouping::Label(endpointslice::LABEL_SERVICE_NAME),
        move |slice: &EndpointSlice| CachedSlice::of(slice, &strings),
    );
    let slices_fed = slices.clone();
    let slice_stream = watcher(Api::<EndpointSlice>::all(client.clone()), ours)
        .default_backoff()
        // Nothing reads them; an update that leaves them out keeps them on the server.
        .modify(|slice| slice.metadata.managed_fields = None)
        .inspect_ok(move |event| {
            slices_fed.apply(event);
        })
        // Our own writes coming back need no new plan (upstream `ShouldSync`); a slice someone
        // else changed or deleted does.
        .try_filter_map(move |event| {
            let tracker = tracker_fed.lock().unwrap_or_else(|e| e.into_inner());
            let changed = match event {
                watcher::Event::Apply(slice) => {
                    let own = tracker.is_own_write(&slice_service(&slice), &slice);
                    (!own).then_some(slice)
                }
                watcher::Event::Delete(slice) => {
                    let uid = slice.uid().unwrap_or_default();
                    let own = tracker.is_own_delete(&slice_service(&slice), &uid);
                    (!own).then_some(slice)
                }
                watcher::Event::InitApply(slice) => Some(slice),
                watcher::Event::Init | watcher::Event::InitDone => None,
            };
            std::future::ready(Ok(changed))
        });

    let periods = config::periods(
        &client,
        config::Periods {
            batch: settings.batch_period,
            additions: settings.additions_interval,
        },
    )
    .await;
    // The Services' own reflector, to drop what is not read (kilobytes per Service) before storing.
    let (services, services_writer) = reflector::store();
    // Services' selectors by namespace, so a pod event reads only its namespace's Services.
    let selectors = GroupedCache::new(Grouping::Namespace, Selecting::of);
    let selectors_fed = selectors.clone();
    let service_stream = watcher(Api::<Service>::all(client.clone()), watch)
        .default_backoff()
        .modify(service_cache::strip_service)
        .inspect_ok(move |event| {
            selectors_fed.apply(event);
        })
        .reflect(services_writer)
        .applied_objects();
    let controller = Controller::for_stream(service_stream, services).with_config(
        ControllerConfig::default()
            .concurrency(settings.workers)
            .debounce(periods.batch),
    );
    let (options_tx, options) = tokio::sync::watch::channel(settings.options.clone());
    tokio::spawn(config::follow(
        client.clone(),
        settings.options.clone(),
        options_tx,
    ));
    // The maximum in force, as a gauge (so operators and tests see when a change has arrived).
    let mut in_force = options.clone();
    let gauge = metrics.max_endpoints_per_slice.clone();
    tokio::spawn(async move {
        loop {
            let max = in_force.borrow_and_update().max_endpoints_per_slice();
            gauge.set(i64::try_from(max).unwrap_or(i64::MAX));
            if in_force.changed().await.is_err() {
                break;
            }
        }
    });
    // A new maximum: plan every Service again.
    let options_changed = futures::stream::unfold(options.clone(), |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    });
    let services = controller.store();
    // The Services store is awaited by kube-runtime itself before any reconcile; every other store
    // has exactly one waiter, here (see `reconcile`).
    let ready_stores = (pods.clone(), nodes.clone(), slices.clone());
    let synced = Arc::new(AtomicBool::new(false));
    let set_synced = synced.clone();
    tokio::spawn(async move {
        let (p, n, s) = ready_stores;
        let _ = tokio::join!(
            p.wait_until_ready(),
            n.wait_until_ready(),
            s.wait_until_ready()
        );
        set_synced.store(true, Ordering::Release);
        on_synced();
    });

    let services_for_nodes = services.clone();
    let reporter = Reporter {
        controller: DEFAULT_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        pods,
        nodes,
        slices,
        options,
        tracker,
        pacer: Mutex::new(WritePacer::new(periods.additions)),
        trigger_times: Mutex::new(TriggerTimes::new(k8s_openapi::jiff::Timestamp::now())),
        failures: Mutex::default(),
        metrics,
        synced,
    });
    controller
        .owns_stream(slice_stream)
        .watches_stream(pod_stream, move |pod: Pod| {
            let ns = pod.namespace().unwrap_or_default();
            let labels = Labels::of(pod.metadata.labels.as_ref());
            let mut names = services_selecting(&selectors, &ns, &labels);
            let before = relabelled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pod.uid().unwrap_or_default());
            if let Some(labels) = before {
                names.extend(services_selecting(&selectors, &ns, &labels));
                names.sort();
                names.dedup();
            }
            names
                .into_iter()
                .map(|name| ObjectRef::<Service>::new(&name).within(&ns))
                .collect::<Vec<_>>()
        })
        .watches_stream(node_stream, move |_node: Node| {
            // A node's zone changed (or a node came or went): every Service may have endpoints there.
            services_for_nodes
                .state()
                .iter()
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        })
        .reconcile_all_on(options_changed)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}
