//! The controller's metrics (prometheus-client), registered once.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RangeLabel {
    pub range: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Debug)]
pub struct Metrics {
    pub reconciles: Counter,
    pub errors: Family<KindLabel, Counter>,
    pub stale_cache_skips: Counter,
    pub paced_plans: Counter,
    pub endpoints_added: Counter,
    pub endpoints_removed: Counter,
    pub slice_changes: Family<OperationLabel, Counter>,
    pub sync_seconds: Histogram,
    /// The maximum in force (flag or configuration resource).
    pub max_endpoints_per_slice: Gauge,
    /// Allocated values per range (ClusterIP CIDR or NodePort range).
    pub range_allocated: Family<RangeLabel, Gauge>,
    pub range_free: Family<RangeLabel, Gauge>,
    /// Webhook answers by outcome: allocated, allowed (nothing to do), denied, error.
    pub webhook_requests: Family<OutcomeLabel, Counter>,
    pub webhook_seconds: Histogram,
    /// What repair did: adopted, released (leaks), out_of_range, duplicate.
    pub repairs: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them under `svcnet_endpointslice_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            reconciles: Counter::default(),
            errors: Family::default(),
            stale_cache_skips: Counter::default(),
            paced_plans: Counter::default(),
            endpoints_added: Counter::default(),
            endpoints_removed: Counter::default(),
            slice_changes: Family::default(),
            sync_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            max_endpoints_per_slice: Gauge::default(),
            range_allocated: Family::default(),
            range_free: Family::default(),
            webhook_requests: Family::default(),
            webhook_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            repairs: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("svcnet_endpointslice");
        r.register("reconciles", "Service reconciles run", m.reconciles.clone());
        r.register(
            "errors",
            "Service reconciles that failed, by kind",
            m.errors.clone(),
        );
        r.register(
            "stale_cache_skips",
            "Reconciles put off because the cache had not seen our own writes yet",
            m.stale_cache_skips.clone(),
        );
        r.register(
            "paced_plans",
            "Plans that only add endpoints, held until the Service's last write is old enough",
            m.paced_plans.clone(),
        );
        r.register(
            "endpoints_added",
            "Endpoints added to slices",
            m.endpoints_added.clone(),
        );
        r.register(
            "endpoints_removed",
            "Endpoints removed from slices",
            m.endpoints_removed.clone(),
        );
        r.register(
            "slice_changes",
            "EndpointSlices written, by operation",
            m.slice_changes.clone(),
        );
        r.register(
            "max_endpoints_per_slice",
            "The maximum number of endpoints per slice in force",
            m.max_endpoints_per_slice.clone(),
        );
        r.register(
            "sync_duration_seconds",
            "Time to reconcile one Service, writes included",
            m.sync_seconds.clone(),
        );
        let a = registry.sub_registry_with_prefix("svcnet_allocation");
        a.register(
            "allocated",
            "Values allocated, by range",
            m.range_allocated.clone(),
        );
        a.register("free", "Values free, by range", m.range_free.clone());
        a.register(
            "webhook_requests",
            "Webhook answers, by outcome (allocated, allowed, denied, error)",
            m.webhook_requests.clone(),
        );
        a.register(
            "webhook_duration_seconds",
            "Time to answer one admission request, persistence included",
            m.webhook_seconds.clone(),
        );
        a.register(
            "repairs",
            "Repair findings, by outcome (adopted, released, out_of_range, duplicate)",
            m.repairs.clone(),
        );
        m
    }

    pub fn observe_webhook(&self, outcome: &str, took: std::time::Duration) {
        self.webhook_requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.webhook_seconds.observe(took.as_secs_f64());
    }

    pub fn repaired(&self, outcome: &str, n: usize) {
        self.repairs
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc_by(n as u64);
    }

    /// Publishes the usage of every range.
    pub fn usage(&self, usage: &[(String, usize, usize)]) {
        for (range, used, free) in usage {
            let label = RangeLabel {
                range: range.clone(),
            };
            self.range_allocated
                .get_or_create(&label)
                .set(i64::try_from(*used).unwrap_or(i64::MAX));
            self.range_free
                .get_or_create(&label)
                .set(i64::try_from(*free).unwrap_or(i64::MAX));
        }
    }

    pub fn slice_written(&self, operation: &str) {
        self.slice_changes
            .get_or_create(&OperationLabel {
                operation: operation.to_owned(),
            })
            .inc();
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }
}
