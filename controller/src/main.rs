//! `svcnet-controller`: EndpointSlices for every Service with a selector (in place of
//! kube-controller-manager's endpointslice-controller).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
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
    };
    let synced = health.clone();
    let controller = reconciler::run(client, settings, metrics, move || {
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
