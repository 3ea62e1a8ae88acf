//! `svcnet-cluster up|down|status`: the local cluster's lifecycle.

pub mod control_plane;
pub mod network;
pub mod pki;
pub mod process;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::error::{Error, Result};
use crate::inventory::{Inventory, StateDir};
use crate::netns;
use crate::wait::poll_for;
use control_plane::{ControlPlane, Ports};

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub control_plane: ControlPlane,
    pub node_agent: PathBuf,
    /// This program (`svcnet-cluster`), started again as the apiserver relay.
    pub cluster_tool: PathBuf,
    pub nodes: u8,
    pub zones: u8,
    pub simulated: bool,
}

/// Brings the cluster up; cleans up what a previous `up` left first.
pub async fn up(state: &StateDir, opts: &UpOptions) -> Result<Inventory> {
    if state.load()?.is_some() {
        tracing::info!("cleaning up what the previous cluster left");
        down(state)?;
    }
    fs::create_dir_all(&state.root)?;
    let Ports { api, .. } = opts.control_plane.ports;
    let mut inv = Inventory {
        cluster_id: random_id(),
        api_port: api,
        dual_stack: opts.control_plane.dual_stack,
        simulated: opts.simulated,
        ..Inventory::default()
    };
    state.save(&inv)?;

    let first_service_ip = "10.96.0.1";
    let pki = pki::generate(&state.pki(), first_service_ip)?;
    fs::write(state.kubeconfig(), pki::kubeconfig(&pki, api))?;

    let cp = &opts.control_plane;
    cp.start_etcd(state, &mut inv).await?;
    cp.start_apiserver(state, &mut inv, &pki)?;
    let client = crate::kit::client::from_kubeconfig(&state.kubeconfig()).await?;
    control_plane::wait_apiserver_ready(&client, &inv).await?;
    cp.start_controllers(state, &mut inv, &pki)?;

    network::create_fabric(state, &mut inv)?;
    for index in 1..=opts.nodes {
        network::create_node(state, &mut inv, index, opts.zones)?;
    }
    network::create_outside(state, &mut inv)?;
    network::add_pod_routes(&inv)?;

    let fabric = inv.fabric_netns.clone().unwrap_or_default();
    let relay_args = vec![
        "api-relay".to_owned(),
        format!("--netns={fabric}"),
        format!("--listen={}:{api}", crate::addresses::API_V4),
        format!("--to=127.0.0.1:{api}"),
    ];
    let record = process::spawn("api-relay", &opts.cluster_tool, &relay_args, &state.logs())?;
    inv.processes.push(record);
    state.save(&inv)?;

    for node in inv.nodes.clone() {
        let mut args = vec![
            format!("--kubeconfig={}", state.kubeconfig().display()),
            format!("--state-dir={}", state.root.display()),
            format!("--cluster-id={}", inv.cluster_id),
            format!("--node-name={}", node.name),
            format!("--node-index={}", node.index),
            format!("--zone={}", node.zone),
            format!("--netns={}", node.netns),
            format!("--api-port={api}"),
        ];
        if inv.dual_stack {
            args.push("--dual-stack".to_owned());
        }
        if opts.simulated {
            args.push("--simulated".to_owned());
        }
        let name = format!("node-agent-{}", node.name);
        let record = process::spawn(&name, &opts.node_agent, &args, &state.logs())?;
        inv.processes.push(record);
        state.save(&inv)?;
    }

    wait_nodes_ready(&client, &inv, usize::from(opts.nodes)).await?;
    Ok(inv)
}

/// Waits for the nodes; fails at once, naming its log, when a process of the cluster has exited.
async fn wait_nodes_ready(client: &kube::Client, inv: &Inventory, want: usize) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    poll_for(
        &format!("{want} Ready nodes"),
        Duration::from_secs(120),
        || {
            let nodes = nodes.clone();
            async move {
                if let Some(dead) = inv.processes.iter().find(|p| !p.is_alive()) {
                    let message = format!("exited; see logs/{}.log", dead.name);
                    return Some(Err(Error::invalid(dead.name.clone(), message)));
                }
                let list = nodes.list(&ListParams::default()).await.ok()?;
                (list.items.iter().filter(|n| is_ready(n)).count() >= want).then_some(Ok(()))
            }
        },
    )
    .await?
}

pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Removes everything the inventory lists: node agents and pod processes first (so nothing recreates
/// a namespace), then pod and node namespaces, then the control plane, then the state directory.
/// Running it twice is harmless.
pub fn down(state: &StateDir) -> Result<()> {
    let Some(inv) = state.load()? else {
        return Ok(());
    };
    let grace = Duration::from_secs(10);
    let (agents, control_plane): (Vec<_>, Vec<_>) = inv
        .processes
        .iter()
        .partition(|p| p.name.starts_with("node-agent-") || p.name == "api-relay");
    for p in agents {
        process::stop(p, grace);
    }
    for p in state.pod_processes() {
        process::stop(&p, grace);
    }
    let mut failures = Vec::new();
    for ns in state.pod_netns().iter().chain(inv.netns.iter().rev()) {
        if let Err(e) = netns::delete(ns) {
            failures.push(e.to_string());
        }
    }
    // Stop in reverse start order: the scheduler and controllers before the apiserver, etcd last.
    for p in control_plane.into_iter().rev() {
        process::stop(p, grace);
    }
    if !failures.is_empty() {
        return Err(Error::invalid("down", failures.join("; ")));
    }
    fs::remove_dir_all(&state.root).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    })?;
    Ok(())
}

/// Starts a program beside the cluster (svcnet's own binaries, before they run as pods), with
/// `KUBECONFIG` set to the cluster's admin kubeconfig; `down` stops it with the rest.
pub fn start_addon(
    state: &StateDir,
    name: &str,
    node: Option<&str>,
    command: &[String],
) -> Result<()> {
    // Tests start and stop addons from several threads and processes: one change to the inventory
    // at a time, or a record is lost and its process outlives `down`.
    let _lock = state.lock()?;
    let mut inv = state
        .load()?
        .ok_or_else(|| Error::invalid("addon", "no cluster is up"))?;
    // On a node: in its network namespace, as a host-network pod would run.
    let netns = match node {
        Some(node) => Some(
            inv.nodes
                .iter()
                .find(|n| n.name == node)
                .map(|n| n.netns.clone())
                .ok_or_else(|| Error::invalid("addon", format!("no node {node}")))?,
        ),
        None => None,
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Error::invalid("addon", "no command"))?;
    let kubeconfig = state.kubeconfig();
    let record = process::spawn_in(
        name,
        std::path::Path::new(program),
        args,
        &state.logs(),
        netns.as_deref(),
        &[("KUBECONFIG", kubeconfig.as_path())],
    )?;
    inv.processes.push(record);
    state.save(&inv)
}

/// Stops the addon(s) named `name` (by recorded pid) and drops them from the inventory.
pub fn stop_addon(state: &StateDir, name: &str) -> Result<()> {
    let _lock = state.lock()?;
    let mut inv = state
        .load()?
        .ok_or_else(|| Error::invalid("addon", "no cluster is up"))?;
    for p in inv.processes.iter().filter(|p| p.name == name) {
        process::stop(p, Duration::from_secs(10));
    }
    inv.processes.retain(|p| p.name != name);
    state.save(&inv)
}

/// What is left of the inventory's processes and namespaces (empty when all is gone).
pub fn leftovers(inv: &Inventory, pod_netns: &[String]) -> Vec<String> {
    let mut left: Vec<String> = inv
        .processes
        .iter()
        .filter(|p| p.is_alive())
        .map(|p| format!("process {} ({})", p.pid, p.name))
        .collect();
    left.extend(
        inv.netns
            .iter()
            .chain(pod_netns)
            .filter(|ns| netns::exists(ns))
            .map(|ns| format!("network namespace {ns}")),
    );
    left
}

fn random_id() -> String {
    // Unique enough to keep two clusters' namespace names apart; not a secret.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{:06x}",
        (nanos ^ std::process::id().rotate_left(16)) & 0xff_ffff
    )
}
