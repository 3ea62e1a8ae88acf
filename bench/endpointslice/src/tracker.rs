//! Watches the benchmark's Pods and the EndpointSlices of the controller under test, and measures, for
//! each pod change, how long after the benchmark saw it (in the Pod watch) the slices showed it (in
//! the EndpointSlice watch). Both watches run in this process, so both times are on one clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::{Deserialize, Serialize};

/// Label on every object the benchmark creates.
pub const BENCH_LABEL: &str = "svcnet-bench";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// (namespace, name)
pub type Key = (String, String);

/// What changed about a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A new pod (scale up) turned Ready: its endpoint must appear, ready.
    NewReady,
    /// Ready → not ready: the endpoint must turn not ready.
    NotReady,
    /// Not ready → Ready: the endpoint must turn ready.
    Ready,
    /// The pod got a deletionTimestamp (scale down): the endpoint must turn terminating (or go).
    Terminating,
    /// The pod object is gone: so must its endpoint be.
    Removed,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::NewReady,
        Kind::NotReady,
        Kind::Ready,
        Kind::Terminating,
        Kind::Removed,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::NewReady => "new pod Ready (scale up) → endpoint added, ready",
            Kind::NotReady => "pod Ready → not ready → endpoint not ready",
            Kind::Ready => "pod not ready → Ready → endpoint ready",
            Kind::Terminating => "pod deleted (scale down) → endpoint terminating",
            Kind::Removed => "pod object gone → endpoint removed",
        }
    }

    /// Whether the endpoint's state (None: in no slice) shows the change.
    fn shown_by(self, ep: Option<EpState>) -> bool {
        match self {
            Kind::NewReady | Kind::Ready => ep.is_some_and(|e| e.ready),
            Kind::NotReady => ep.is_none_or(|e| !e.ready),
            Kind::Terminating => ep.is_none_or(|e| e.terminating),
            Kind::Removed => ep.is_none(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EpState {
    ready: bool,
    terminating: bool,
}

#[derive(Debug, Clone)]
pub struct PodObs {
    pub service: String,
    pub ready: bool,
    pub ever_ready: bool,
    pub deleting: bool,
}

#[derive(Debug)]
struct Pending {
    pod: Key,
    kind: Kind,
    seen: Instant,
    seen_wall: SystemTime,
}

/// One measured change, for lining it up with the controller's and the apiserver's logs.
#[derive(Debug, Clone)]
pub struct Traced {
    pub pod: Key,
    pub kind: Kind,
    /// When the benchmark saw the pod change.
    pub seen: SystemTime,
    pub latency: Duration,
}

#[derive(Debug, Default)]
pub struct State {
    pub pods: HashMap<Key, PodObs>,
    /// (namespace, slice name) → (service, endpoints by pod name)
    slices: HashMap<Key, (String, Vec<(String, EpState)>)>,
    /// Pod → the slices listing it and its state there.
    endpoints: HashMap<Key, BTreeMap<String, EpState>>,
    /// Pod changes are measured only while this is set (during churn).
    pub measuring: bool,
    pending: Vec<Pending>,
    /// Pod changes seen while measuring.
    pub changes_seen: usize,
    /// Every change the slices showed, in the order they showed it.
    pub trace: Vec<Traced>,
    /// Changes overtaken by a newer change of the same pod before the slices showed them.
    pub superseded: usize,
    /// Slice watch events (applied or deleted) for the manager's slices, since the start.
    pub slice_events: u64,
    pub pod_watch_restarts: u64,
    pub slice_watch_restarts: u64,
}

impl State {
    fn endpoint(&self, pod: &Key) -> Option<EpState> {
        let slices = self.endpoints.get(pod)?;
        // Listed in two slices at once only for a moment while an endpoint moves; any ready copy counts.
        let ready = slices.values().any(|e| e.ready);
        let terminating = slices.values().all(|e| e.terminating);
        (!slices.is_empty()).then_some(EpState { ready, terminating })
    }

    fn settle(&mut self, now: Instant) {
        let shown: Vec<bool> = self
            .pending
            .iter()
            .map(|p| p.kind.shown_by(self.endpoint(&p.pod)))
            .collect();
        let mut shown = shown.into_iter();
        let mut done = Vec::new();
        self.pending.retain(|p| {
            let is_shown = shown.next().unwrap_or(false);
            if is_shown {
                done.push(Traced {
                    pod: p.pod.clone(),
                    kind: p.kind,
                    seen: p.seen_wall,
                    latency: now.saturating_duration_since(p.seen),
                });
            }
            !is_shown
        });
        self.trace.extend(done);
    }

    fn change(&mut self, pod: Key, kind: Kind, now: Instant) {
        if !self.measuring {
            return;
        }
        let before = self.pending.len();
        self.pending.retain(|p| p.pod != pod);
        self.superseded += before - self.pending.len();
        self.changes_seen += 1;
        self.pending.push(Pending {
            pod,
            kind,
            seen: now,
            seen_wall: SystemTime::now(),
        });
        self.settle(now);
    }

    fn pod_applied(&mut self, pod: &Pod, now: Instant) {
        let key = key_of(&pod.metadata);
        let ready = is_ready(pod);
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let service = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .cloned()
            .unwrap_or_default();
        let old = self.pods.get(&key).cloned();
        let obs = PodObs {
            service,
            ready,
            ever_ready: ready || old.as_ref().is_some_and(|o| o.ever_ready),
            deleting,
        };
        self.pods.insert(key.clone(), obs);
        let was_deleting = old.as_ref().is_some_and(|o| o.deleting);
        let was_ready = old.as_ref().is_some_and(|o| o.ready);
        let was_ever_ready = old.as_ref().is_some_and(|o| o.ever_ready);
        if deleting {
            if !was_deleting {
                self.change(key, Kind::Terminating, now);
            }
        } else if ready != was_ready {
            let kind = match (ready, was_ever_ready) {
                (true, false) => Kind::NewReady,
                (true, true) => Kind::Ready,
                (false, _) => Kind::NotReady,
            };
            // A new pod's first not-ready status is no change of the Service's endpoints.
            if ready || old.is_some() {
                self.change(key, kind, now);
            }
        }
    }

    fn pod_deleted(&mut self, pod: &Pod, now: Instant) {
        let key = key_of(&pod.metadata);
        self.pods.remove(&key);
        self.change(key, Kind::Removed, now);
    }

    fn slice_applied(&mut self, slice: &EndpointSlice, now: Instant) {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let key = key_of(&slice.metadata);
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
            .unwrap_or_default();
        let endpoints: Vec<(String, EpState)> = slice
            .endpoints
            .iter()
            .flatten()
            .filter_map(|ep| {
                let pod = ep.target_ref.as_ref()?.name.clone()?;
                let c = ep.conditions.clone().unwrap_or_default();
                Some((
                    pod,
                    EpState {
                        ready: c.ready.unwrap_or(false),
                        terminating: c.terminating.unwrap_or(false),
                    },
                ))
            })
            .collect();
        self.slice_removed(&key);
        for (pod, state) in &endpoints {
            self.endpoints
                .entry((ns.clone(), pod.clone()))
                .or_default()
                .insert(key.1.clone(), *state);
        }
        self.slices.insert(key, (service, endpoints));
        self.settle(now);
    }

    fn slice_removed(&mut self, key: &Key) {
        if let Some((_, endpoints)) = self.slices.remove(key) {
            for (pod, _) in endpoints {
                let pod_key = (key.0.clone(), pod);
                if let Some(slices) = self.endpoints.get_mut(&pod_key) {
                    slices.remove(&key.1);
                    if slices.is_empty() {
                        self.endpoints.remove(&pod_key);
                    }
                }
            }
        }
    }

    /// Ready endpoints per (namespace, service) over the manager's slices.
    pub fn ready_per_service(&self) -> HashMap<Key, usize> {
        let mut out: HashMap<Key, usize> = HashMap::new();
        for ((ns, _), (service, endpoints)) in &self.slices {
            let ready = endpoints.iter().filter(|(_, e)| e.ready).count();
            *out.entry((ns.clone(), service.clone())).or_default() += ready;
        }
        out
    }

    pub fn slice_count(&self) -> usize {
        self.slices.len()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Drops what is still pending (after a round timed out); returns how many.
    pub fn abandon_pending(&mut self) -> usize {
        std::mem::take(&mut self.pending).len()
    }

    /// Ready, not deleting pods of a Service, by name.
    pub fn ready_pods_of(&self, ns: &str, service: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .pods
            .iter()
            .filter(|((n, _), o)| n == ns && o.service == service && o.ready && !o.deleting)
            .map(|((_, name), _)| name.clone())
            .collect();
        names.sort();
        names
    }
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[derive(Debug, Clone)]
pub struct Tracker {
    state: Arc<Mutex<State>>,
}

impl Tracker {
    /// Starts both watches (every namespace): pods labelled [`BENCH_LABEL`], slices managed by
    /// `manager`.
    pub fn start(client: kube::Client, manager: &str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let tracker = Tracker { state };
        let pods: Api<Pod> = Api::all(client.clone());
        let slices: Api<EndpointSlice> = Api::all(client);
        let pod_config = watcher::Config::default().labels(BENCH_LABEL);
        let slice_config =
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={manager}"));
        let t = tracker.clone();
        tokio::spawn(async move {
            let mut events = watcher(pods, pod_config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let mut s = t.lock();
                match event {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                        s.pod_applied(&p, now)
                    }
                    Ok(watcher::Event::Delete(p)) => s.pod_deleted(&p, now),
                    Ok(watcher::Event::Init) => s.pod_watch_restarts += 1,
                    Ok(watcher::Event::InitDone) => {}
                    Err(e) => eprintln!("pod watch: {e}"),
                }
            }
        });
        let t = tracker.clone();
        tokio::spawn(async move {
            let mut events = watcher(slices, slice_config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let mut s = t.lock();
                match event {
                    Ok(watcher::Event::Apply(slice)) => {
                        s.slice_events += 1;
                        s.slice_applied(&slice, now);
                    }
                    Ok(watcher::Event::InitApply(slice)) => s.slice_applied(&slice, now),
                    Ok(watcher::Event::Delete(slice)) => {
                        s.slice_events += 1;
                        s.slice_removed(&key_of(&slice.metadata));
                        s.settle(now);
                    }
                    Ok(watcher::Event::Init) => s.slice_watch_restarts += 1,
                    Ok(watcher::Event::InitDone) => {}
                    Err(e) => eprintln!("endpointslice watch: {e}"),
                }
            }
        });
        tracker
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, ready: bool, deleting: bool) -> Pod {
        let mut meta = json!({ "name": name, "namespace": "ns", "labels": { "app": "s1" } });
        if deleting {
            meta["deletionTimestamp"] = json!("2026-11-22T00:00:00Z");
        }
        serde_json::from_value(json!({
            "metadata": meta,
            "status": { "conditions": [ { "type": "Ready", "status": if ready { "True" } else { "False" } } ] }
        }))
        .unwrap_or_default()
    }

    fn slice(eps: &[(&str, bool, bool)]) -> EndpointSlice {
        let endpoints: Vec<_> = eps
            .iter()
            .map(|(p, ready, term)| {
                json!({
                    "addresses": ["10.129.0.2"],
                    "conditions": { "ready": ready, "terminating": term },
                    "targetRef": { "kind": "Pod", "name": p, "namespace": "ns" },
                })
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": { "name": "s1-abc", "namespace": "ns", "labels": { SERVICE_NAME_LABEL: "s1" } },
            "addressType": "IPv4",
            "endpoints": endpoints,
        }))
        .unwrap_or_default()
    }

    #[test]
    fn measures_each_kind_of_change_once_the_slice_shows_it() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = State::default();
        s.pod_applied(&pod("a", true, false), at(0));
        s.slice_applied(&slice(&[("a", true, false)]), at(1));
        assert_eq!(
            s.ready_per_service().get(&("ns".into(), "s1".into())),
            Some(&1)
        );
        s.measuring = true;
        s.pod_applied(&pod("a", false, false), at(10));
        assert_eq!(s.pending_count(), 1);
        s.slice_applied(&slice(&[("a", true, false)]), at(12));
        assert_eq!(s.pending_count(), 1);
        s.slice_applied(&slice(&[("a", false, false)]), at(15));
        s.pod_applied(&pod("b", false, false), at(20));
        s.pod_applied(&pod("b", true, false), at(21));
        s.slice_applied(&slice(&[("a", false, false), ("b", true, false)]), at(30));
        s.pod_applied(&pod("a", false, true), at(40));
        s.slice_applied(&slice(&[("a", false, true), ("b", true, false)]), at(41));
        s.pod_deleted(&pod("a", false, true), at(50));
        s.slice_applied(&slice(&[("b", true, false)]), at(53));
        let got: Vec<(Kind, u64)> = s
            .trace
            .iter()
            .map(|t| (t.kind, t.latency.as_millis() as u64))
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::NotReady, 5),
                (Kind::NewReady, 9),
                (Kind::Terminating, 1),
                (Kind::Removed, 3)
            ]
        );
        assert_eq!(s.changes_seen, 4);
        assert_eq!(s.pending_count(), 0);
    }
}
