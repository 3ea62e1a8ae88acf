//! `endpoints.kubernetes.io/last-change-trigger-time` on the slices we write: when the change
//! they carry happened (upstream's `TriggerTimeTracker`). Proxies subtract it from the time their
//! rules took the change to measure network programming latency.
//!
//! A change is a Pod's Ready condition flipping (its `lastTransitionTime`) or the Service being
//! created. A write carries the earliest change not carried before, so the latency measured is
//! that of the change that waited longest. Deleted Pods leave no time behind (as upstream).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;

/// The annotation's key.
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str =
    "endpoints.kubernetes.io/last-change-trigger-time";

/// When the Pod's readiness last changed (its Ready condition's `lastTransitionTime`).
pub fn pod_trigger_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// When the Service was created.
pub fn service_trigger_time(service: &Service) -> Option<Timestamp> {
    service.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// The latest change each Service's slices have carried, per `namespace/name`.
#[derive(Debug)]
pub struct TriggerTimes {
    /// Changes before this (the controller's start) are not ours to time: slices written before a
    /// restart may carry them already, and a proxy would count them as hours of latency.
    floor: Timestamp,
    carried: HashMap<String, Timestamp>,
}

impl TriggerTimes {
    pub fn new(floor: Timestamp) -> Self {
        Self {
            floor,
            carried: HashMap::new(),
        }
    }

    /// For a write of `service`'s slices: the earliest of `changes` not carried yet (none when
    /// every change is), and the mark to [`carried`](Self::carried) once the write succeeded.
    pub fn pending(
        &self,
        service: &str,
        changes: impl IntoIterator<Item = Timestamp>,
    ) -> (Option<Timestamp>, Timestamp) {
        let mark = self.carried.get(service).copied().unwrap_or(self.floor);
        changes
            .into_iter()
            .filter(|t| *t > mark)
            .fold((None, mark), |(earliest, latest), t| {
                (
                    Some(earliest.map_or(t, |e: Timestamp| e.min(t))),
                    latest.max(t),
                )
            })
    }

    /// Every change up to `mark` is now in the Service's slices (or needed no write).
    pub fn carried(&mut self, service: &str, mark: Timestamp) {
        if mark > self.floor {
            self.carried.insert(service.to_owned(), mark);
        }
    }

    /// The Service is gone.
    pub fn forget(&mut self, service: &str) {
        self.carried.remove(service);
    }
}

/// The annotation's value for `time` (RFC 3339, as upstream writes it).
pub fn format(time: Timestamp) -> String {
    time.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_write_carries_the_earliest_change_not_carried_yet() {
        let mut times = TriggerTimes::new(at("2026-12-01T00:00:00Z"));
        let changes = [at("2026-12-01T00:00:05Z"), at("2026-12-01T00:00:02Z")];
        let (trigger, mark) = times.pending("ns/web", changes);
        assert_eq!(trigger, Some(at("2026-12-01T00:00:02Z")));
        assert_eq!(mark, at("2026-12-01T00:00:05Z"));
        times.carried("ns/web", mark);

        // The same pods again: nothing new to carry.
        assert_eq!(times.pending("ns/web", changes).0, None);
        // One more flip: only it counts.
        let more = [changes[0], changes[1], at("2026-12-01T00:00:09Z")];
        assert_eq!(
            times.pending("ns/web", more).0,
            Some(at("2026-12-01T00:00:09Z"))
        );
    }

    #[test]
    fn changes_before_the_start_are_not_timed() {
        let times = TriggerTimes::new(at("2026-12-01T00:00:00Z"));
        let (trigger, mark) = times.pending("ns/web", [at("2026-11-30T23:00:00Z")]);
        assert_eq!(trigger, None);
        assert_eq!(mark, at("2026-12-01T00:00:00Z"));
    }

    #[test]
    fn services_are_tracked_apart_and_forgotten() {
        let mut times = TriggerTimes::new(at("2026-12-01T00:00:00Z"));
        times.carried("ns/a", at("2026-12-01T00:01:00Z"));
        let change = [at("2026-12-01T00:00:30Z")];
        assert_eq!(times.pending("ns/a", change).0, None);
        assert_eq!(times.pending("ns/b", change).0, Some(change[0]));
        times.forget("ns/a");
        assert_eq!(times.pending("ns/a", change).0, Some(change[0]));
    }

    #[test]
    fn the_value_is_rfc_3339() {
        assert_eq!(
            format(at("2026-12-01T00:00:02.5Z")),
            "2026-12-01T00:00:02.5Z"
        );
    }
}
