//! `svcnet-node-agent`: one node of the local cluster (see docs/local-cluster.md).

use std::path::PathBuf;

use clap::Parser;
use svcnet_e2e::agent::{self, AgentConfig};
use svcnet_e2e::inventory::StateDir;

#[derive(Parser)]
#[command(about = "What the kubelet does for the network, for one node of the local cluster")]
struct Cli {
    #[arg(long)]
    kubeconfig: PathBuf,
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long)]
    cluster_id: String,
    #[arg(long)]
    node_name: String,
    /// 1-based; fixes the node's addresses and pod CIDR.
    #[arg(long)]
    node_index: u8,
    #[arg(long)]
    zone: String,
    /// The node's network namespace.
    #[arg(long)]
    netns: String,
    #[arg(long)]
    api_port: u16,
    #[arg(long)]
    dual_stack: bool,
    #[arg(long)]
    simulated: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_client=off".into()),
        )
        .init();
    let cli = Cli::parse();
    let client = svcnet_e2e::kit::client::from_kubeconfig(&cli.kubeconfig).await?;
    let cfg = AgentConfig {
        node_name: cli.node_name,
        node_index: cli.node_index,
        zone: cli.zone,
        netns: cli.netns,
        cluster_id: cli.cluster_id,
        state: StateDir::new(cli.state_dir),
        dual_stack: cli.dual_stack,
        simulated: cli.simulated,
        api_port: cli.api_port,
        started_at: agent::status::now_rfc3339(),
    };
    agent::run(client, cfg).await?;
    Ok(())
}
