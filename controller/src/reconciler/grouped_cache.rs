//! A watch cache grouped by namespace, and within a namespace optionally by a label's value (our
//! slices by the Service they belong to), fed by the same watch events as kube-runtime's reflector.
//! A reconcile reads the objects of one group instead of scanning every object in the cluster: with
//! 20,000 pods and 2,000 Services, the cluster-wide scan was most of the controller's CPU under
//! churn. It replaces the reflector's store for those kinds, so each object is held once, and it is
//! laid out to cost little per object: one map entry keyed by the object's name, within its
//! namespace's map.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

/// How objects are grouped within their namespace.
#[derive(Debug, Clone, Copy)]
pub enum Grouping {
    /// One group per namespace.
    Namespace,
    /// By the value of this label; objects without it are not kept.
    Label(&'static str),
}

/// What is kept of one object, and the value of the grouping label (for [`Grouping::Label`]).
#[derive(Debug)]
struct Entry<V> {
    label: Option<Box<str>>,
    value: Arc<V>,
}

/// Entries by namespace, then by name.
#[derive(Debug)]
struct Namespaces<V>(HashMap<Arc<str>, HashMap<Box<str>, Entry<V>>>);

impl<V> Default for Namespaces<V> {
    fn default() -> Self {
        Namespaces(HashMap::new())
    }
}

impl<V> Namespaces<V> {
    fn get(&self, ns: &str, name: &str) -> Option<Arc<V>> {
        Some(self.0.get(ns)?.get(name)?.value.clone())
    }

    fn insert(&mut self, ns: &str, name: &str, entry: Entry<V>) {
        match self.0.get_mut(ns) {
            Some(objects) => {
                objects.insert(name.into(), entry);
            }
            None => {
                self.0
                    .insert(ns.into(), HashMap::from([(name.into(), entry)]));
            }
        }
    }

    fn remove(&mut self, ns: &str, name: &str) {
        if let Some(objects) = self.0.get_mut(ns) {
            objects.remove(name);
            if objects.is_empty() {
                self.0.remove(ns);
            }
        }
    }
}

/// The function keeping what the controller reads of an object.
type Keep<K, V> = Box<dyn Fn(&K) -> V + Send + Sync>;

/// What is kept of each object (`V`: the object itself, or the part of it the controller reads),
/// by namespace and group.
pub struct GroupedCache<K, V = K> {
    grouping: Grouping,
    keep: Keep<K, V>,
    state: RwLock<State<V>>,
    /// True once the first list is complete.
    ready: tokio::sync::watch::Sender<bool>,
}

impl<K, V> std::fmt::Debug for GroupedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedCache")
            .field("grouping", &self.grouping)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State<V> {
    live: Namespaces<V>,
    /// A (re)list in progress: it replaces `live` as a whole once complete, as the reflector does.
    relist: Option<Namespaces<V>>,
}

impl<K: kube::Resource, V> GroupedCache<K, V> {
    /// A cache grouping objects by `grouping`, keeping `keep(object)` of each.
    pub fn new(grouping: Grouping, keep: impl Fn(&K) -> V + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(GroupedCache {
            grouping,
            keep: Box::new(keep),
            state: RwLock::new(State {
                live: Namespaces::default(),
                relist: None,
            }),
            ready: tokio::sync::watch::Sender::new(false),
        })
    }

    fn insert(&self, objects: &mut Namespaces<V>, obj: &K) {
        let (ns, name) = (namespace(obj), obj.name_any());
        // An object can move between groups (a slice relabelled) or lose its label: the new entry
        // replaces the old one.
        let label = match self.grouping {
            Grouping::Namespace => None,
            Grouping::Label(key) => match obj.labels().get(key) {
                Some(value) => Some(value.as_str().into()),
                None => {
                    objects.remove(&ns, &name);
                    return;
                }
            },
        };
        let value = Arc::new((self.keep)(obj));
        objects.insert(&ns, &name, Entry { label, value });
    }

    /// Applies one watch event. For an object applied, returns what was kept of it before (from the
    /// live view, also during a relist), so a caller can see what changed.
    pub fn apply(&self, event: &Event<K>) -> Option<Arc<V>> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let before = match event {
            Event::Apply(obj) | Event::InitApply(obj) => {
                state.live.get(&namespace(obj), &obj.name_any())
            }
            _ => None,
        };
        match event {
            Event::Init => state.relist = Some(Namespaces::default()),
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
            Event::Delete(obj) => state.live.remove(&namespace(obj), &obj.name_any()),
        }
        before
    }

    /// Calls `f` with what is kept of each object of namespace `ns` (with [`Grouping::Label`]:
    /// whose label is `label`), under the cache's read lock: `f` must not block.
    pub fn for_each(&self, ns: &str, label: Option<&str>, mut f: impl FnMut(&Arc<V>)) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(objects) = state.live.0.get(ns) else {
            return;
        };
        for entry in objects.values() {
            if label.is_none() || entry.label.as_deref() == label {
                f(&entry.value);
            }
        }
    }

    /// What is kept of the objects of namespace `ns` (with [`Grouping::Label`]: whose label is
    /// `label`).
    pub fn group(&self, ns: &str, label: Option<&str>) -> Vec<Arc<V>> {
        let mut out = Vec::new();
        self.for_each(ns, label, |v| out.push(v.clone()));
        out
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

    /// Objects held, over every namespace.
    #[cfg(test)]
    fn len(&self) -> usize {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.live.0.values().map(HashMap::len).sum()
    }
}

fn namespace<K: kube::Resource>(obj: &K) -> String {
    obj.namespace().unwrap_or_default()
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

    fn cache(grouping: Grouping) -> Arc<GroupedCache<Pod>> {
        GroupedCache::new(grouping, Pod::clone)
    }

    fn names(cache: &GroupedCache<Pod>, ns: &str) -> Vec<String> {
        let mut names: Vec<String> = cache.group(ns, None).iter().map(|p| p.name_any()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_relist_replaces_everything_once_done() {
        let cache = cache(Grouping::Namespace);
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(pod("a", "1")));
        assert!(!cache.is_ready());
        assert!(
            cache.group("a", None).is_empty(),
            "not live before InitDone"
        );
        cache.apply(&Event::InitDone);
        assert!(cache.is_ready());
        assert_eq!(names(&cache, "a"), ["1"]);

        // A later relist (the watch expired) drops what it no longer lists.
        cache.apply(&Event::Apply(pod("b", "2")));
        cache.apply(&Event::Init);
        cache.apply(&Event::InitApply(pod("b", "3")));
        assert_eq!(names(&cache, "a"), ["1"], "the old view serves until done");
        cache.apply(&Event::InitDone);
        assert!(cache.group("a", None).is_empty());
        assert_eq!(names(&cache, "b"), ["3"]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn applies_and_deletes_touch_only_their_object() {
        let cache = cache(Grouping::Namespace);
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
        let cache = cache(Grouping::Namespace);
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
        let cache = cache(Grouping::Label("svc"));
        let labelled = |label| {
            let mut names: Vec<String> = cache
                .group("a", Some(label))
                .iter()
                .map(|p| p.name_any())
                .collect();
            names.sort();
            names
        };
        let mut p = pod("a", "1");
        p.labels_mut().insert("svc".into(), "x".into());
        cache.apply(&Event::Apply(p.clone()));
        p.labels_mut().insert("svc".into(), "y".into());
        cache.apply(&Event::Apply(p.clone()));
        assert!(labelled("x").is_empty());
        assert_eq!(labelled("y"), ["1"]);
        p.labels_mut().clear();
        cache.apply(&Event::Apply(p));
        assert_eq!(cache.len(), 0, "no label: not kept");
    }
}
