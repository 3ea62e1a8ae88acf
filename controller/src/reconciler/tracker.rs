//! The stale-cache guard: remember what we wrote (the generation of every slice we created or
//! updated, the uid of every slice we deleted) and refuse to plan a Service from a cache that has not
//! caught up with our own writes. Planning from such a cache would write what was already written, or
//! recreate what was just deleted.

use std::collections::HashMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The cache must show this slice at this generation or newer.
    Generation(i64),
    /// The cache must no longer show this slice.
    Deleted,
}

/// Expected slice states per Service (`namespace/name`), keyed by slice uid.
#[derive(Debug, Default)]
pub struct SliceTracker {
    expected: HashMap<String, HashMap<String, Expect>>,
}

impl SliceTracker {
    /// Records a slice the API returned from a create or an update.
    pub fn wrote(&mut self, service: &str, written: &ObjectMeta) {
        if let (Some(uid), Some(generation)) = (written.uid.clone(), written.generation) {
            self.expected
                .entry(service.to_owned())
                .or_default()
                .insert(uid, Expect::Generation(generation));
        }
    }

    pub fn deleted(&mut self, service: &str, uid: &str) {
        self.expected
            .entry(service.to_owned())
            .or_default()
            .insert(uid.to_owned(), Expect::Deleted);
    }

    /// True when `cached` (the cache's slices of the Service) misses one of our writes. Expectations
    /// the cache has met are dropped: the cache only moves forward.
    pub fn is_stale(&mut self, service: &str, cached: &[&EndpointSlice]) -> bool {
        let Some(expected) = self.expected.get_mut(service) else {
            return false;
        };
        let generation_of = |uid: &str| {
            cached
                .iter()
                .find(|s| s.metadata.uid.as_deref() == Some(uid))
                .map(|s| s.metadata.generation.unwrap_or_default())
        };
        expected.retain(|uid, expect| match (*expect, generation_of(uid)) {
            (Expect::Generation(want), Some(have)) => have < want,
            (Expect::Generation(_), None) => true,
            (Expect::Deleted, seen) => seen.is_some(),
        });
        let stale = !expected.is_empty();
        if !stale {
            self.expected.remove(service);
        }
        stale
    }

    /// Whether `slice`, as a watch event shows it, is what our own last write of it left, so its
    /// Service need not be planned again for it (upstream `ShouldSync`). A slice someone else
    /// changed has a newer generation.
    pub fn is_own_write(&self, service: &str, slice: &EndpointSlice) -> bool {
        let (Some(uid), Some(generation)) = (&slice.metadata.uid, slice.metadata.generation) else {
            return false;
        };
        self.expected.get(service).and_then(|e| e.get(uid)) == Some(&Expect::Generation(generation))
    }

    /// Whether we deleted the slice `uid` ourselves (upstream `HandleDeletion`).
    pub fn is_own_delete(&self, service: &str, uid: &str) -> bool {
        self.expected.get(service).and_then(|e| e.get(uid)) == Some(&Expect::Deleted)
    }

    /// Forgets a Service that is gone.
    pub fn forget(&mut self, service: &str) {
        self.expected.remove(service);
    }

    pub fn services_tracked(&self) -> usize {
        self.expected.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn slice(uid: &str, generation: i64) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: None,
            ports: None,
        }
    }

    #[test]
    fn cache_behind_our_update_is_stale_until_it_catches_up() {
        let mut t = SliceTracker::default();
        t.wrote("ns/web", &slice("a", 3).metadata);
        assert!(t.is_stale("ns/web", &[&slice("a", 2)]));
        assert!(t.is_stale("ns/web", &[]));
        assert!(!t.is_stale("ns/web", &[&slice("a", 3)]));
        assert_eq!(t.services_tracked(), 0);
        // Once caught up, an older view can't come back, and nothing is tracked any more.
        assert!(!t.is_stale("ns/web", &[&slice("a", 2)]));
    }

    #[test]
    fn cache_still_showing_a_deleted_slice_is_stale() {
        let mut t = SliceTracker::default();
        t.deleted("ns/web", "b");
        assert!(t.is_stale("ns/web", &[&slice("b", 1)]));
        assert!(!t.is_stale("ns/web", &[&slice("c", 1)]));
    }

    #[test]
    fn our_own_writes_and_deletes_are_recognised_until_the_cache_has_caught_up() {
        let mut t = SliceTracker::default();
        t.wrote("ns/web", &slice("a", 3).metadata);
        t.deleted("ns/web", "b");
        assert!(t.is_own_write("ns/web", &slice("a", 3)));
        assert!(
            !t.is_own_write("ns/web", &slice("a", 4)),
            "someone else's update"
        );
        assert!(
            !t.is_own_write("ns/web", &slice("c", 1)),
            "a slice we never wrote"
        );
        assert!(!t.is_own_write("ns/db", &slice("a", 3)));
        assert!(t.is_own_delete("ns/web", "b") && !t.is_own_delete("ns/web", "a"));
    }

    #[test]
    fn services_are_tracked_apart() {
        let mut t = SliceTracker::default();
        t.wrote("ns/a", &slice("a", 2).metadata);
        assert!(!t.is_stale("ns/b", &[]));
        t.forget("ns/a");
        assert!(!t.is_stale("ns/a", &[]));
    }
}
