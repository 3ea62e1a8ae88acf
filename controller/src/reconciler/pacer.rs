//! Pacing of the writes that only add to a Service's endpoints.
//!
//! When a Deployment's pods come up one after the other, each one turning ready would rewrite the
//! Service's slice. A write that takes nothing away (it adds endpoints, or marks them ready) is held
//! until `interval` has passed since the Service's last write, so the pods that turn ready meanwhile
//! go out in one write. A write that removes an endpoint or makes one worse (not ready, terminating)
//! is never held, and takes whatever was held with it. The first write after a quiet spell goes at
//! once: a Service whose pods change now and then sees no delay at all.
//!
//! Upstream folds such changes only by chance (a change arriving while its queue is busy, or while
//! its cache lags its own write, which it retries after a second), or by
//! `endpointUpdatesBatchPeriod`, which delays every change, removals included.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Below this many Services remembered, never prune.
const MIN_PRUNE: usize = 64;

/// The time of each Service's last write, for as long as it matters.
#[derive(Debug)]
pub struct WritePacer {
    interval: Duration,
    last_write: HashMap<String, Instant>,
    prune_at: usize,
}

impl WritePacer {
    /// A pacer holding additions until `interval` after a Service's last write (zero: never).
    pub fn new(interval: Duration) -> Self {
        WritePacer {
            interval,
            last_write: HashMap::new(),
            prune_at: MIN_PRUNE,
        }
    }

    /// How long to hold a write of `service`'s slices that takes nothing away; `None`: write now.
    pub fn hold(&self, service: &str, now: Instant) -> Option<Duration> {
        let last = self.last_write.get(service)?;
        let since = now.saturating_duration_since(*last);
        (since < self.interval).then(|| self.interval - since)
    }

    /// Records a write of `service`'s slices at `now`.
    pub fn wrote(&mut self, service: &str, now: Instant) {
        if self.interval.is_zero() {
            return;
        }
        if self.last_write.len() >= self.prune_at {
            // Writes older than the interval hold nothing back any more.
            let interval = self.interval;
            self.last_write
                .retain(|_, t| now.saturating_duration_since(*t) < interval);
            self.prune_at = (self.last_write.len() * 2).max(MIN_PRUNE);
        }
        self.last_write.insert(service.to_owned(), now);
    }

    /// Services remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.last_write.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_addition_right_after_a_write_waits_out_the_interval() {
        let t0 = Instant::now();
        let mut pacer = WritePacer::new(SECOND);
        assert_eq!(pacer.hold("ns/web", t0), None, "nothing written yet");
        pacer.wrote("ns/web", t0);
        let ms = Duration::from_millis;
        assert_eq!(pacer.hold("ns/web", t0 + ms(300)), Some(ms(700)));
        assert_eq!(pacer.hold("ns/web", t0 + SECOND), None);
        assert_eq!(pacer.hold("ns/db", t0 + ms(300)), None, "per Service");
    }

    #[test]
    fn a_zero_interval_never_holds() {
        let t0 = Instant::now();
        let mut pacer = WritePacer::new(Duration::ZERO);
        pacer.wrote("ns/web", t0);
        assert_eq!(pacer.hold("ns/web", t0), None);
        assert_eq!(pacer.len(), 0);
    }

    #[test]
    fn services_written_long_ago_are_forgotten() {
        let t0 = Instant::now();
        let mut pacer = WritePacer::new(SECOND);
        for i in 0..MIN_PRUNE {
            pacer.wrote(&format!("ns/old-{i}"), t0);
        }
        pacer.wrote("ns/new", t0 + 2 * SECOND);
        assert_eq!(pacer.len(), 1);
    }
}
