//! `svcnet-cluster up|down|status|inventory`: the local cluster (see docs/local-cluster.md).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use svcnet_e2e::cluster::{self, UpOptions, control_plane::ControlPlane, control_plane::Ports};
use svcnet_e2e::inventory::StateDir;

#[derive(Parser)]
#[command(
    about = "The local svcnet test cluster: upstream control plane, nodes as network namespaces"
)]
struct Cli {
    /// Where the cluster keeps its state (kubeconfig, certificates, logs, inventory).
    #[arg(long, env = "SVCNET_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start etcd, the control plane and the nodes; wait until every node is Ready.
    Up {
        /// The hyperkube binary (e2e/hyperkube/build.sh prints its path).
        #[arg(long, env = "SVCNET_HYPERKUBE")]
        hyperkube: PathBuf,
        #[arg(long, default_value_t = 3)]
        nodes: u8,
        #[arg(long, default_value_t = 2)]
        zones: u8,
        /// Give the cluster an IPv6 service range and pods an IPv6 address too.
        #[arg(long)]
        dual_stack: bool,
        /// Run kube-controller-manager's own endpointslice-controller (off by default: svcnet's replaces it).
        #[arg(long)]
        upstream_endpointslice: bool,
        /// Pods get an address and a status but no namespace (for scale tests).
        #[arg(long)]
        simulated: bool,
        #[arg(long, default_value_t = 16443)]
        api_port: u16,
        #[arg(long, default_value_t = 12379)]
        etcd_port: u16,
    },
    /// Remove every process, namespace and file the cluster made (idempotent).
    Down,
    /// Show the nodes, namespaces and processes of the running cluster.
    Status,
    /// Print the inventory (what `down` will remove) as JSON.
    Inventory,
    /// Start a program beside the cluster with KUBECONFIG set (logs in logs/<name>.log); `down` stops it.
    Addon {
        #[arg(long)]
        name: String,
        /// Run it in this node's network namespace (like a host-network pod).
        #[arg(long)]
        node: Option<String>,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Start svcnet beside the cluster: its CRDs, svcnet-controller (with the allocation webhook) and
    /// svcnet-proxy in every node's namespace, as the e2e suite expects them.
    StartSvcnet,
    /// Stop an addon started with `addon`.
    StopAddon {
        #[arg(long)]
        name: String,
    },
    /// (Started by `up`.) Relay the apiserver into a namespace of the cluster.
    #[command(hide = true)]
    ApiRelay {
        #[arg(long)]
        netns: String,
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        to: std::net::SocketAddr,
    },
    /// Relay connections to `listen` (root namespace) to `to` as seen from inside a node's namespace
    /// (e.g. the webhook Service's ClusterIP, so the apiserver reaches a webhook run as pods).
    RelayInto {
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// node-1, node-2, ...
        #[arg(long)]
        node: String,
        #[arg(long)]
        to: std::net::SocketAddr,
    },
    /// Ask `whoami` of an address from a node (node-1, ...) or from `outside`; prints the pod that
    /// answered and the client address it saw.
    Probe {
        /// node-1, node-2, ... or outside
        #[arg(long)]
        from: String,
        /// ip:port
        target: std::net::SocketAddr,
        #[arg(long)]
        udp: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube_client=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let state = cli
        .state_dir
        .map(StateDir::new)
        .unwrap_or_else(StateDir::from_env);
    match cli.command {
        Command::Up {
            hyperkube,
            nodes,
            zones,
            dual_stack,
            upstream_endpointslice,
            simulated,
            api_port,
            etcd_port,
        } => {
            let cluster_tool = std::env::current_exe()?;
            let node_agent = cluster_tool
                .parent()
                .context("no directory for svcnet-node-agent")?
                .join("svcnet-node-agent");
            let opts = UpOptions {
                control_plane: ControlPlane {
                    hyperkube,
                    ports: Ports {
                        api: api_port,
                        etcd_client: etcd_port,
                        etcd_peer: etcd_port + 1,
                    },
                    dual_stack,
                    upstream_endpointslice,
                },
                node_agent,
                cluster_tool,
                nodes,
                zones,
                simulated,
            };
            let started = std::time::Instant::now();
            let inv = match cluster::up(&state, &opts).await {
                Ok(inv) => inv,
                Err(e) => {
                    eprintln!(
                        "cluster up failed: {e}\nlogs are in {}",
                        state.logs().display()
                    );
                    bail!(e);
                }
            };
            println!(
                "cluster {} is up in {:.0?}: {} nodes\n\n  export KUBECONFIG={}\n  kubectl get nodes -o wide\n\nTear down with `make cluster-down`.",
                inv.cluster_id,
                started.elapsed(),
                inv.nodes.len(),
                state.kubeconfig().display()
            );
        }
        Command::Down => {
            cluster::down(&state)?;
            println!("cluster down");
        }
        Command::Status => {
            let Some(inv) = state.load()? else {
                println!("no cluster");
                return Ok(());
            };
            println!(
                "cluster {} (api on 127.0.0.1:{})",
                inv.cluster_id, inv.api_port
            );
            for n in &inv.nodes {
                println!("  {} {} {} netns={}", n.name, n.zone, n.ipv4, n.netns);
            }
            for p in &inv.processes {
                let state = if p.is_alive() { "running" } else { "GONE" };
                println!("  process {:<32} pid {:<8} {state}", p.name, p.pid);
            }
            println!("  pod namespaces: {}", state.pod_netns().len());
        }
        Command::Inventory => {
            let inv = state.load()?.context("no cluster")?;
            let mut value = serde_json::to_value(&inv)?;
            value["pod_netns"] = serde_json::to_value(state.pod_netns())?;
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Command::Addon {
            name,
            node,
            command,
        } => cluster::start_addon(&state, &name, node.as_deref(), &command)?,
        Command::StopAddon { name } => cluster::stop_addon(&state, &name)?,
        Command::StartSvcnet => {
            let inv = state.load()?.context("no cluster")?;
            let client = svcnet_e2e::kit::client::from_kubeconfig(&state.kubeconfig()).await?;
            let nodes: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
            svcnet_e2e::kit::addons::start_svcnet(&client, &nodes).await?;
            println!(
                "svcnet started: controller on 127.0.0.1:18080, webhook on {}, proxies on {}",
                svcnet_e2e::kit::addons::WEBHOOK_ADDR,
                nodes.join(", ")
            );
        }
        Command::ApiRelay { netns, listen, to } => {
            let _relay = svcnet_e2e::agent::relay::start(&netns, listen, to).await?;
            tokio::signal::ctrl_c().await?;
        }
        Command::RelayInto { listen, node, to } => {
            let inv = state.load()?.context("no cluster")?;
            let netns = inv
                .nodes
                .iter()
                .find(|n| n.name == node)
                .map(|n| n.netns.clone())
                .context("no such node")?;
            let _relay = svcnet_e2e::agent::relay::start_into(listen, &netns, to).await?;
            tokio::signal::ctrl_c().await?;
        }
        Command::Probe { from, target, udp } => {
            let inv = state.load()?.context("no cluster")?;
            let netns = if from == "outside" {
                inv.outside_netns.clone()
            } else {
                inv.nodes
                    .iter()
                    .find(|n| n.name == from)
                    .map(|n| n.netns.clone())
            }
            .with_context(|| format!("no node or client named {from}"))?;
            let prober = svcnet_e2e::kit::prober::Prober::from_netns(netns);
            let reply = if udp {
                prober.udp(target).await?
            } else {
                prober.tcp(target).await?
            };
            println!(
                "{from} -> {target}: answered by {} (saw client {})",
                reply.pod, reply.client
            );
        }
    }
    Ok(())
}
