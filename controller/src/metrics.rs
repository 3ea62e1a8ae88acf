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

#[derive(Debug)]
pub struct Metrics {
    pub reconciles: Counter,
    pub errors: Family<KindLabel, Counter>,
    pub stale_cache_skips: Counter,
    pub endpoints_added: Counter,
    pub endpoints_removed: Counter,
    pub slice_changes: Family<OperationLabel, Counter>,
    pub sync_seconds: Histogram,
    /// The maximum in force (flag or configuration resource).
    pub max_endpoints_per_slice: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `svcnet_endpointslice_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            reconciles: Counter::default(),
            errors: Family::default(),
            stale_cache_skips: Counter::default(),
            endpoints_added: Counter::default(),
            endpoints_removed: Counter::default(),
            slice_changes: Family::default(),
            sync_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            max_endpoints_per_slice: Gauge::default(),
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
        m
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
