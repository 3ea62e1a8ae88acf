//! `svcnet-controller`: EndpointSlices for every Service with a selector (in place of
//! kube-controller-manager's endpointslice-controller).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use ipnet::IpNet;
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use svcnet_allocator::PortRange;
use svcnet_controller::allocation::leader::{self as allocation, Allocation, RangeFlags};
use svcnet_controller::allocation::store::Store;
use svcnet_controller::allocation::tls::{self, Endpoint};
use svcnet_controller::allocation::webhook::{self, Webhook};
use svcnet_controller::endpointslice::{DEFAULT_MANAGER, Options};
use svcnet_controller::http::{self, Health};
use svcnet_controller::metrics::Metrics;
use svcnet_controller::reconciler::{self, Settings};

#[derive(Parser)]
#[command(about = "svcnet-controller: EndpointSlices for every Service")]
struct Cli {
    /// At most this many endpoints per EndpointSlice (1-1000).
    #[arg(long, default_value_t = 100)]
    max_endpoints_per_slice: usize,
    /// Coalesce pod changes for one Service over this period (e.g. 0s, 500ms, 1s).
    #[arg(long, default_value = "0s", value_parser = reconciler::config::parse_duration)]
    endpoint_updates_batch_period: Duration,
    /// Hold a write that only adds endpoints (or marks them ready) until this long after the
    /// Service's last write, so pods coming up together go out in one write; 0s writes at once.
    /// Removals are never held.
    #[arg(long, default_value = "500ms", value_parser = reconciler::config::parse_duration)]
    endpoint_additions_interval: Duration,
    /// Services reconciled at once.
    #[arg(long, default_value_t = 8)]
    workers: u16,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Elect one writer through a Lease, so two replicas can run.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    #[arg(long, env = "POD_NAMESPACE", default_value = "kube-system")]
    leader_elect_namespace: String,
    #[arg(long, default_value = "svcnet-controller")]
    leader_elect_lease: String,
    /// This replica's name in the Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Serve the ClusterIP/NodePort allocation webhook (HTTPS) here; no webhook without it.
    #[arg(long)]
    webhook_addr: Option<SocketAddr>,
    /// The MutatingWebhookConfiguration whose caBundle (and failurePolicy) the controller keeps current.
    #[arg(long, default_value = "svcnet")]
    webhook_configuration: String,
    /// Create or update the whole webhook configuration, calling this URL (for a controller that
    /// runs outside the cluster, as on the local cluster). Without it the configuration must exist.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The Secret (namespace/name) holding the CA and serving certificate all replicas share; the
    /// first replica makes it. Default: <leader-elect-namespace>/svcnet-webhook-tls.
    #[arg(long)]
    webhook_secret: Option<String>,
    /// Names (DNS or IP) the serving certificate is for, e.g. svcnet-webhook.svcnet.svc.
    #[arg(long = "webhook-dns-name")]
    webhook_dns_names: Vec<String>,
    /// Serve tls.crt/tls.key from this directory (e.g. a cert-manager Secret) instead; caBundle is
    /// then left alone.
    #[arg(long)]
    webhook_cert_dir: Option<PathBuf>,
    /// ClusterIP ranges when svcnet's configuration names none (default: the apiserver's ServiceCIDRs).
    #[arg(long = "service-cidr")]
    service_cidrs: Vec<IpNet>,
    /// NodePort range when there is no svcnet configuration.
    #[arg(long, default_value = "30000-32767")]
    node_port_range: PortRange,
    /// How often repair compares the allocation state with the Services.
    #[arg(long, default_value = "3m", value_parser = reconciler::config::parse_duration)]
    repair_interval: Duration,
    /// A leak (allocated, held by no Service) is released on the pass that sees it this many times.
    #[arg(long, default_value_t = 3)]
    repair_passes: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let options = Options::new(cli.max_endpoints_per_slice, DEFAULT_MANAGER)
        .context("invalid --max-endpoints-per-slice")?;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes client configuration")?;

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let health = Arc::new(Health {
        ready: false.into(),
        registry,
    });
    let server = tokio::spawn(http::serve(cli.http_addr, health.clone()));

    let range_flags = RangeFlags {
        cidrs: cli.service_cidrs.clone(),
        ports: cli.node_port_range,
    };
    let store = Arc::new(Store::new(client.clone()));
    let webhook_endpoint = cli
        .webhook_url
        .clone()
        .map_or(Endpoint::Existing, Endpoint::Url);
    let webhook_server = match cli.webhook_addr {
        Some(addr) => Some(
            start_webhook(
                &cli,
                &client,
                addr,
                &webhook_endpoint,
                &store,
                &range_flags,
                &metrics,
            )
            .await?,
        ),
        None => None,
    };

    let identity = cli
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}-{}", DEFAULT_MANAGER, std::process::id()));
    let mut leadership = None;
    if cli.leader_elect {
        let manager = LeaseManagerBuilder::new(client.clone(), &cli.leader_elect_lease)
            .with_namespace(&cli.leader_elect_namespace)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .context("leader election")?;
        let (mut leading, task) = manager.watch().await;
        tracing::info!(identity, "waiting to lead");
        // A follower is ready: it serves health and would take over.
        health.ready.store(true, Ordering::Relaxed);
        while !*leading.borrow_and_update() {
            leading.changed().await.context("leader election stopped")?;
        }
        tracing::info!(identity, "leading");
        leadership = Some((leading, task));
    }
    health.ready.store(false, Ordering::Relaxed);

    let settings = Settings {
        options,
        workers: cli.workers,
        batch_period: cli.endpoint_updates_batch_period,
        additions_interval: cli.endpoint_additions_interval,
    };
    let synced = health.clone();
    let allocation_leader = async {
        if cli.webhook_addr.is_none() {
            return std::future::pending::<()>().await;
        }
        allocation::run(Allocation {
            client: client.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            flags: range_flags.clone(),
            repair_interval: cli.repair_interval,
            repair_passes: cli.repair_passes,
            webhook: Some((cli.webhook_configuration.clone(), webhook_endpoint.clone())),
        })
        .await;
    };
    let webhook_down = async {
        match webhook_server {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    let controller = reconciler::run(client.clone(), settings, metrics.clone(), move || {
        synced.ready.store(true, Ordering::Relaxed);
        tracing::info!("caches synced");
    });

    let lost = async {
        match leadership.as_mut() {
            Some((leading, _)) => {
                while *leading.borrow_and_update() {
                    if leading.changed().await.is_err() {
                        break;
                    }
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    // Whatever ends first ends the process, so Kubernetes restarts it: a lost lease (we must stop
    // writing at once), a dead HTTP server (probes would lie), or the controller itself.
    // Caches that never sync would leave a leader that writes nothing: exit, so it is restarted.
    let watchdog = async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        if health.ready.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = controller => tracing::info!("controller stopped"),
        () = allocation_leader => anyhow::bail!("the allocation watch ended"),
        result = webhook_down => {
            result.context("webhook task")?.context("webhook server")?;
            anyhow::bail!("the webhook server stopped");
        }
        () = watchdog => anyhow::bail!("caches did not sync within 2 minutes"),
        () = lost => anyhow::bail!("lost the leader lease"),
        result = server => {
            result.context("http server task")?.context("http server")?;
        }
    }
    // Stopped on a signal: hand the lease over at once rather than let the next leader wait it out.
    if let Some((leading, task)) = leadership {
        drop(leading);
        if let Ok(Ok(manager)) = task.await {
            manager.release().await.context("releasing the lease")?;
        }
    }
    Ok(())
}

/// Loads the allocation state (rebuilt from the Services), sets up TLS, serves the webhook and
/// points the webhook configuration at it. Returns the serving task.
async fn start_webhook(
    cli: &Cli,
    client: &kube::Client,
    addr: SocketAddr,
    endpoint: &Endpoint,
    store: &Arc<Store>,
    range_flags: &RangeFlags,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    allocation::prepare(client, store, range_flags)
        .await
        .context("loading the allocation state")?;
    let material = match &cli.webhook_cert_dir {
        Some(dir) => tls::from_dir(dir)?,
        None => {
            let secret = cli
                .webhook_secret
                .clone()
                .unwrap_or_else(|| format!("{}/svcnet-webhook-tls", cli.leader_elect_namespace));
            let (namespace, name) = secret
                .split_once('/')
                .context("--webhook-secret must be namespace/name")?;
            tls::shared(client, namespace, name, &cli.webhook_dns_names).await?
        }
    };
    let config = tls::server_config(&material)?;
    let task = tokio::spawn(webhook::serve(
        addr,
        config,
        Arc::new(Webhook {
            store: store.clone(),
            metrics: metrics.clone(),
        }),
    ));
    let ca = cli
        .webhook_cert_dir
        .is_none()
        .then_some(material.ca.as_str());
    let (_, config, _) = allocation::desired_ranges(client, range_flags).await?;
    let policy = config.map(|c| c.spec.webhook.failure_policy.as_str());
    tls::configure(client, &cli.webhook_configuration, endpoint, ca, policy)
        .await
        .context("configuring the MutatingWebhookConfiguration")?;
    tracing::info!(%addr, configuration = cli.webhook_configuration, "webhook ready");
    Ok(task)
}
