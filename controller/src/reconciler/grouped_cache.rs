//! A watch cache grouped by a key (a namespace, or a namespace and a Service name), fed by the same
//! watch events as kube-runtime's reflector. A reconcile then reads the objects of one group instead of
//! scanning every object in the cluster: with 20,000 pods and 2,000 Services, the cluster-wide scan
//! was most of the controller's CPU under churn. It replaces the reflector's store for those kinds, so
//! each object is held once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::endpointslice::LABEL_SERVICE_NAME;

/// Values by group, then by object identity; and each object's group, to find it on a change.
#[derive(Debug)]
struct Groups<V> {
    members: HashMap<String, HashMap<String, Arc<V>>>,
    group_of_object: HashMap<String, String>,
}

impl<V> Default for Groups<V> {
    fn default() -> Self {
        Groups {
            members: HashMap::new(),
            group_of_object: HashMap::new(),
        }
    }
}

impl<V> Groups<V> {
    fn get(&self, id: &str) -> Option<Arc<V>> {
        let group = self.group_of_object.get(id)?;
        self.members.get(group)?.get(id).cloned()
    }

    fn insert(&mut self, id: String, group: Option<String>, value: impl FnOnce() -> V) {
        // An object can move between groups (a slice relabelled): take it out of its old one.
        self.remove_id(&id);
        if let Some(group) = group {
            self.members
                .entry(group.clone())
                .or_default()
                .insert(id.clone(), Arc::new(value()));
            self.group_of_object.insert(id, group);
        }
    }

    fn remove_id(&mut self, id: &str) {
        let Some(group) = self.group_of_object.remove(id) else {
            return;
        };
        if let Some(members) = self.members.get_mut(&group) {
            members.remove(id);
            if members.is_empty() {
                self.members.remove(&group);
            }
        }
    }
}

/// What is kept of each object (`V`: the object itself, or the part of it the controller reads),
/// by group, then by name.
#[derive(Debug)]
pub struct GroupedCache<K, V = K> {
    group_of: fn(&K) -> Option<String>,
    keep: fn(&K) -> V,
    state: RwLock<State<V>>,
    /// True once the first list is complete.
    ready: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug)]
struct State<V> {
    live: Groups<V>,
    /// A (re)list in progress: it replaces `live` as a whole once complete, as the reflector does.
    relist: Option<Groups<V>>,
}

impl<K: kube::Resource, V> GroupedCache<K, V> {
    /// A cache grouping objects by `group_of` (objects it gives no group are not kept), keeping
    /// `keep(object)` of each.
    pub fn new(group_of: fn(&K) -> Option<String>, keep: fn(&K) -> V) -> Arc<Self> {
        Arc::new(GroupedCache {
            group_of,
            keep,
            state: RwLock::new(State {
                live: Groups::default(),
                relist: None,
            }),
            ready: tokio::sync::watch::Sender::new(false),
        })
    }

    fn insert(&self, groups: &mut Groups<V>, obj: &K) {
        groups.insert(identity(obj), (self.group_of)(obj), || (self.keep)(obj));
    }

    /// Applies one watch event. For an object applied, returns what was kept of it before (from the
    /// live view, also during a relist), so a caller can see what changed.
    pub fn apply(&self, event: &Event<K>) -> Option<Arc<V>> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let before = match event {
            Event::Apply(obj) | Event::InitApply(obj) => state.live.get(&identity(obj)),
            _ => None,
        };
        match event {
            Event::Init => state.relist = Some(Groups::default()),
            Event::InitApply(obj) => {
                if let Some(relist) = state.relist.as_mut() {
                    self.insert(relist, obj);
                }
            }
            Event::InitDone => {
                if let Some(relist) = state.relist.take() {
                    state.live = relist;
                }
                self.ready.send_replace(true);
            }
            Event::Apply(obj) => self.insert(&mut state.live, obj),
            Event::Delete(obj) => state.live.remove_id(&identity(obj)),
        }
        before
    }

    /// What is kept of the objects of `group`.
    pub fn group(&self, group: &str) -> Vec<Arc<V>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .live
            .members
            .get(group)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the first list has completed.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Returns once the first list has completed.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives as long as `self`, so this only returns once ready.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// Objects held, over every group.
    #[cfg(test)]
    fn len(&self) -> usize {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.live.group_of_object.len()
    }
}

/// Namespace and name: unique for one kind.
fn identity<K: kube::Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Groups by namespace.
pub fn by_namespace<K: kube::Resource>(obj: &K) -> Option<String> {
    Some(obj.namespace().unwrap_or_default())
}

/// Groups EndpointSlices by namespace and Service (`<ns>/<service-name label>`).
pub fn by_service(slice: &EndpointSlice) -> Option<String> {
    let service = slice.labels().get(LABEL_SERVICE_NAME)?;
    Some(service_group(
        &slice.namespace().unwrap_or_default(),
        service,
    ))
}

/// The group of a Service's slices in [`by_service`].
pub fn service_group(namespace: &str, service: &str) -> String {
    format!("{namespace}/{service}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(ns: &str, name: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.namespace = Some(ns.into());
        p.metadata.name = Some(name.into());
        p
    }

    fn cache(group_of: fn(&Pod) -> Option<String>) -> Arc<GroupedCache<Pod>> {
        GroupedCache::new(group_of, Pod::clone)
    }

    fn names(cache: &GroupedCache<Pod>, group: &str) -> Vec<String> {
        let mut names: Vec<String> = cache.group(group).iter().map(|p| p.name_any()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_relist_replaces_everything_once_done() {
        let cache = cache(by_namespace::<Pod>);
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(pod("a", "1")));
        assert!(!cache.is_ready());
        assert!(cache.group("a").is_empty(), "not live before InitDone");
        cache.apply(&Event::InitDone);
        assert!(cache.is_ready());
        assert_eq!(names(&cache, "a"), ["1"]);

        // A later relist (the watch expired) drops what it no longer lists.
        cache.apply(&Event::Apply(pod("b", "2")));
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(pod("b", "3")));
        assert_eq!(names(&cache, "a"), ["1"], "the old view serves until done");
        cache.apply(&Event::InitDone);
        assert!(cache.group("a").is_empty());
        assert_eq!(names(&cache, "b"), ["3"]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn applies_and_deletes_touch_only_their_object() {
        let cache = cache(by_namespace::<Pod>);
        cache.apply(&Event::Init);
        cache.apply(&Event::InitDone);
        cache.apply(&Event::Apply(pod("a", "1")));
        cache.apply(&Event::Apply(pod("a", "2")));
        cache.apply(&Event::Apply(pod("b", "1")));
        cache.apply(&Event::Apply(pod("a", "1")));
        assert_eq!(names(&cache, "a"), ["1", "2"]);
        cache.apply(&Event::Delete(pod("a", "1")));
        assert_eq!(names(&cache, "a"), ["2"]);
        assert_eq!(names(&cache, "b"), ["1"]);
    }

    #[test]
    fn an_apply_returns_what_was_kept_before() {
        let cache = cache(by_namespace::<Pod>);
        let mut p = pod("a", "1");
        assert!(cache.apply(&Event::Apply(p.clone())).is_none());
        p.labels_mut().insert("app".into(), "web".into());
        let before = cache.apply(&Event::Apply(p.clone()));
        assert_eq!(before.map(|b| b.labels().len()), Some(0));
        // A relist compares with the live view.
        cache.apply(&Event::Init);
        let before = cache.apply(&Event::InitApply(p));
        assert_eq!(before.map(|b| b.labels().len()), Some(1));
    }

    #[test]
    fn an_object_that_changes_group_moves() {
        let cache = cache(|p: &Pod| p.labels().get("svc").cloned());
        let mut p = pod("a", "1");
        p.labels_mut().insert("svc".into(), "x".into());
        cache.apply(&Event::Apply(p.clone()));
        p.labels_mut().insert("svc".into(), "y".into());
        cache.apply(&Event::Apply(p.clone()));
        assert!(cache.group("x").is_empty());
        assert_eq!(names(&cache, "y"), ["1"]);
        p.labels_mut().clear();
        cache.apply(&Event::Apply(p));
        assert_eq!(cache.len(), 0, "no group: not kept");
    }
}
