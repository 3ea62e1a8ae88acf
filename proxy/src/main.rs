//! `svcnet-proxy`: Services on this node through nftables (in place of kube-proxy).

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use ipnet::IpNet;
use svcnet_proxy::model::{Family, ProxyConfig};
use svcnet_proxy::runner::{self, Settings, nft};

#[derive(Parser)]
#[command(about = "svcnet-proxy: Services on this node through nftables")]
struct Cli {
    /// This node's name.
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// The pod network; traffic from outside it to a ClusterIP is masqueraded.
    #[arg(long = "cluster-cidr")]
    cluster_cidrs: Vec<IpNet>,
    /// The Service ranges (traffic to an unallocated address in them is dropped).
    #[arg(long = "service-cidr")]
    service_cidrs: Vec<IpNet>,
    /// Addresses NodePorts answer on; default: the node's InternalIPs.
    #[arg(long = "nodeport-address")]
    node_port_addresses: Vec<IpNet>,
    #[arg(long)]
    masquerade_all: bool,
    /// At most one sync per this many milliseconds.
    #[arg(long, default_value_t = 100)]
    min_sync_period_ms: u64,
    /// Program IPv4 only (default: both families).
    #[arg(long)]
    ipv4_only: bool,
    /// Where `/healthz` and `/metrics` are served (kube-proxy's health port).
    #[arg(long, default_value = "0.0.0.0:10256")]
    http_addr: std::net::SocketAddr,
    /// Remove svcnet's nftables tables and exit.
    #[arg(long)]
    cleanup: bool,
    /// The DaemonSet (namespace/name) this proxy runs in: when it is gone or being deleted as the
    /// proxy stops (the chart is uninstalled), svcnet's tables are removed; on any other stop (a
    /// rolling update, a restart) the rules stay so traffic keeps flowing.
    #[arg(long)]
    owner_daemonset: Option<String>,
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
    if cli.cleanup {
        nft::cleanup().await.context("cleanup")?;
        tracing::info!("svcnet tables removed");
        return Ok(());
    }
    let node_name = cli
        .node_name
        .context("--node-name (or NODE_NAME) is required")?;
    let mut config = ProxyConfig::new(&node_name, Vec::new());
    config.cluster_cidrs = cli.cluster_cidrs;
    config.service_cidrs = cli.service_cidrs;
    config.node_port_addresses = cli.node_port_addresses;
    config.masquerade_all = cli.masquerade_all;
    config.validate().context("invalid configuration")?;
    let families = if cli.ipv4_only {
        vec![Family::V4]
    } else {
        vec![Family::V4, Family::V6]
    };
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes client configuration")?;
    let owner = cli.owner_daemonset.clone();
    let settings = Settings {
        node_name,
        config,
        families,
        min_sync_period: Duration::from_millis(cli.min_sync_period_ms),
    };
    let metrics = svcnet_proxy::runner::metrics::Metrics::new();
    let server = tokio::spawn(svcnet_proxy::runner::metrics::serve(
        cli.http_addr,
        metrics.clone(),
    ));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    tokio::select! {
        result = runner::run(client.clone(), settings, metrics) => result.context("proxy stopped")?,
        result = server => {
            result.context("http server task")?.context("http server")?;
        }
        _ = tokio::signal::ctrl_c() => stopping(&client, owner.as_deref()).await?,
        _ = terminate.recv() => stopping(&client, owner.as_deref()).await?,
    }
    Ok(())
}

/// On a stop signal: remove svcnet's tables if the owning DaemonSet is gone (uninstalled).
async fn stopping(client: &kube::Client, owner: Option<&str>) -> anyhow::Result<()> {
    let Some((namespace, name)) = owner.and_then(|o| o.split_once('/')) else {
        tracing::info!("stopping; rules stay in place");
        return Ok(());
    };
    let api: kube::Api<k8s_openapi::api::apps::v1::DaemonSet> =
        kube::Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(ds)) if ds.metadata.deletion_timestamp.is_none() => {
            tracing::info!(daemonset = owner, "stopping; rules stay in place");
        }
        Ok(_) => {
            nft::cleanup().await.context("cleanup")?;
            tracing::info!(
                daemonset = owner,
                "the DaemonSet is gone: svcnet tables removed"
            );
        }
        // Our ServiceAccount or its permissions went with the chart: uninstalled too.
        Err(kube::Error::Api(e)) if e.code == 401 || e.code == 403 => {
            nft::cleanup().await.context("cleanup")?;
            tracing::info!(
                daemonset = owner,
                code = e.code,
                "our credentials are gone (uninstalled): svcnet tables removed"
            );
        }
        // Unsure (the API unreachable): keep the rules, as on any other stop.
        Err(e) => {
            tracing::warn!(error = %e, "stopping; cannot tell whether uninstalled, rules stay")
        }
    }
    Ok(())
}
