//! Network programming latency: from when a change happened (the EndpointSlice's
//! `endpoints.kubernetes.io/last-change-trigger-time`, written by the EndpointSlice controller) to
//! when this proxy's rules carry it. Pure bookkeeping; the runner feeds it and observes the result.

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;

/// The annotation's key.
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str =
    "endpoints.kubernetes.io/last-change-trigger-time";

/// Trigger times seen in the slices and not yet carried by a successful sync.
#[derive(Debug)]
pub struct ChangeTimes {
    /// Changes before the proxy started are not its to time (it may have been down for hours).
    started: Timestamp,
    /// The annotation each slice (by uid) had when last noted.
    seen: HashMap<String, String>,
    pending: Vec<Timestamp>,
}

impl ChangeTimes {
    pub fn new(started: Timestamp) -> Self {
        Self {
            started,
            seen: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// Notes a slice applied by the watch (its uid and annotation), when its annotation changed.
    /// Unparseable values are ignored (a controller writing garbage must not break the proxy).
    pub fn note(&mut self, uid: &str, value: Option<&str>) {
        let Some(value) = value else {
            self.seen.remove(uid);
            return;
        };
        if self.seen.get(uid).map(String::as_str) == Some(value) {
            return;
        }
        if let Ok(time) = value.parse::<Timestamp>()
            && time >= self.started
        {
            self.pending.push(time);
        }
        self.seen.insert(uid.to_owned(), value.to_owned());
    }

    /// The slice is gone.
    pub fn forget(&mut self, uid: &str) {
        self.seen.remove(uid);
    }

    /// The trigger times a successful sync has just carried into the rules.
    pub fn take(&mut self) -> Vec<Timestamp> {
        std::mem::take(&mut self.pending)
    }
}

/// Seconds from `trigger` to `now`; never negative (clocks of two machines may disagree).
pub fn seconds_since(trigger: Timestamp, now: Timestamp) -> f64 {
    now.duration_since(trigger).as_secs_f64().max(0.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const T1: &str = "2026-12-01T00:00:05Z";
    const T2: &str = "2026-12-01T00:00:09Z";

    #[test]
    fn each_new_trigger_time_is_timed_once() {
        let mut times = ChangeTimes::new(at("2026-12-01T00:00:00Z"));
        times.note("a", Some(T1));
        times.note("b", None);
        assert_eq!(times.take(), vec![at(T1)]);
        // Unchanged: nothing; changed: timed.
        times.note("a", Some(T1));
        assert!(times.take().is_empty());
        times.note("a", Some(T2));
        assert_eq!(times.take(), vec![at(T2)]);
        // A slice deleted and made again with the same value: timed again.
        times.forget("a");
        times.note("a", Some(T2));
        assert_eq!(times.take(), vec![at(T2)]);
    }

    #[test]
    fn pending_times_wait_for_a_successful_sync() {
        let mut times = ChangeTimes::new(at("2026-12-01T00:00:00Z"));
        times.note("a", Some(T1));
        // A failed sync takes nothing; what is pending stays for the next one.
        times.note("a", Some(T1));
        times.note("b", Some(T2));
        assert_eq!(times.take(), vec![at(T1), at(T2)]);
    }

    #[test]
    fn old_and_malformed_times_are_ignored() {
        let mut times = ChangeTimes::new(at("2026-12-01T00:00:00Z"));
        times.note("old", Some("2026-11-30T00:00:00Z"));
        times.note("bad", Some("yesterday"));
        assert!(times.take().is_empty());
    }

    #[test]
    fn latency_is_never_negative() {
        assert_eq!(seconds_since(at(T2), at(T1)), 0.0);
        assert_eq!(seconds_since(at(T1), at(T2)), 4.0);
    }
}
