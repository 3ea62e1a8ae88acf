//! The proxy's `/healthz` and `/metrics` (prometheus-client), on one small HTTP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// `full` or `partial`.
    pub kind: String,
    /// `ip` or `ip6`.
    pub family: String,
}

#[derive(Debug)]
pub struct Metrics {
    pub sync_seconds: Family<SyncLabels, Histogram>,
    pub sync_failures: Family<SyncLabels, Counter>,
    /// Lines (nft commands) of the last transaction applied.
    pub transaction_lines: Family<SyncLabels, Gauge>,
    /// UDP conntrack deletions run for endpoints that went away.
    pub conntrack_deletions: Counter,
    /// From a change (the slice's last-change trigger time) to the rules carrying it.
    pub network_programming_seconds: Histogram,
    /// Healthy while the last sync succeeded.
    pub healthy: AtomicBool,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let sync_seconds = Family::<SyncLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let sync_failures = Family::<SyncLabels, Counter>::default();
        let transaction_lines = Family::<SyncLabels, Gauge>::default();
        let mut registry = Registry::default();
        let r = registry.sub_registry_with_prefix("svcnet_proxy");
        r.register(
            "sync_duration_seconds",
            "Time to compile and apply one family's transaction",
            sync_seconds.clone(),
        );
        r.register(
            "sync_failures",
            "Transactions nft refused",
            sync_failures.clone(),
        );
        r.register(
            "transaction_lines",
            "nft commands in the last transaction applied",
            transaction_lines.clone(),
        );
        let conntrack_deletions = Counter::default();
        r.register(
            "conntrack_deletions",
            "UDP conntrack deletions (one endpoint, one destination each) for endpoints that went away",
            conntrack_deletions.clone(),
        );
        // Trigger times have a resolution of one second (a Pod condition's lastTransitionTime).
        let network_programming_seconds = Histogram::new(exponential_buckets(0.25, 2.0, 12));
        r.register(
            "network_programming_duration_seconds",
            "From an endpoint change (the EndpointSlice's last-change-trigger-time) to the rules carrying it",
            network_programming_seconds.clone(),
        );
        Arc::new(Metrics {
            sync_seconds,
            sync_failures,
            transaction_lines,
            conntrack_deletions,
            network_programming_seconds,
            healthy: AtomicBool::new(false),
            registry,
        })
    }

    fn encode(&self) -> String {
        let mut body = String::new();
        if prometheus_client::encoding::text::encode(&mut body, &self.registry).is_err() {
            body.clear();
        }
        body
    }
}

/// Serves `/healthz` (200 once a sync succeeded and while the last one did, else 503) and `/metrics`.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => ("200 OK", metrics.encode()),
                "/healthz" if metrics.healthy.load(Ordering::Relaxed) => {
                    ("200 OK", "ok".to_owned())
                }
                "/healthz" => ("503 Service Unavailable", "not synced".to_owned()),
                _ => ("404 Not Found", String::new()),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        });
    }
}
