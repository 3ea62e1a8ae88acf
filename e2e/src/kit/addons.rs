//! svcnet's binaries and upstream's controllers run beside the local cluster as addons (until the Helm
//! chart runs them as pods): started with the cluster's kubeconfig, recorded, stopped by pid.

use std::path::PathBuf;

use crate::cluster;
use crate::error::Result;
use crate::inventory::StateDir;

fn workspace_binary(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/debug")
        .join(name)
}

/// `svcnet-controller`, from `SVCNET_CONTROLLER` or this workspace's debug build.
pub fn controller_binary() -> PathBuf {
    std::env::var_os("SVCNET_CONTROLLER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_binary("svcnet-controller"))
}

/// Where every controller replica serves the allocation webhook (they share it through
/// SO_REUSEPORT, so the apiserver reaches whichever replicas run, as through a Service).
pub const WEBHOOK_ADDR: &str = "127.0.0.1:18443";

/// The webhook flags of a replica on the local cluster: the controller manages the whole
/// MutatingWebhookConfiguration `svcnet`, pointing the apiserver at loopback.
pub fn webhook_flags() -> Vec<String> {
    vec![
        format!("--webhook-addr={WEBHOOK_ADDR}"),
        format!("--webhook-url=https://{WEBHOOK_ADDR}/mutate-services"),
        "--webhook-dns-name=127.0.0.1".to_owned(),
        "--webhook-secret=kube-system/svcnet-webhook-tls".to_owned(),
    ]
}

/// Starts a svcnet-controller replica named `name`, serving HTTP on 127.0.0.1:`http_port` and the
/// webhook on [`WEBHOOK_ADDR`].
pub fn start_controller(name: &str, http_port: u16) -> Result<()> {
    start_controller_with(name, http_port, &[])
}

/// [`start_controller`] with further flags.
pub fn start_controller_with(name: &str, http_port: u16, extra: &[String]) -> Result<()> {
    let mut command = vec![
        controller_binary().display().to_string(),
        format!("--http-addr=127.0.0.1:{http_port}"),
        format!("--identity={name}"),
    ];
    command.extend(webhook_flags());
    command.extend(extra.iter().cloned());
    cluster::start_addon(&StateDir::from_env(), name, None, &command)
}

/// The main controller replica's name and HTTP port (as `svcnet-cluster start-svcnet` starts it).
pub const MAIN_CONTROLLER: (&str, u16) = ("svcnet-controller", 18080);

/// svcnet beside the running cluster, as the chart would install it: the CRDs, the controller (with
/// its webhook) and svcnet-proxy on every node.
pub async fn start_svcnet(client: &kube::Client, nodes: &[String]) -> Result<()> {
    crate::kit::crds::install(client).await?;
    start_controller(MAIN_CONTROLLER.0, MAIN_CONTROLLER.1)?;
    for node in nodes {
        start_proxy(node)?;
    }
    Ok(())
}

pub fn stop(name: &str) -> Result<()> {
    cluster::stop_addon(&StateDir::from_env(), name)
}

/// `svcnet-proxy`, from `SVCNET_PROXY` or this workspace's debug build.
pub fn proxy_binary() -> PathBuf {
    std::env::var_os("SVCNET_PROXY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_binary("svcnet-proxy"))
}

/// The addon name of a node's proxy (as scripts/start-svcnet.sh names it).
pub fn proxy_name(node: &str) -> String {
    format!("svcnet-proxy-{node}")
}

/// Starts svcnet-proxy in the node's namespace, with the local cluster's address plan.
pub fn start_proxy(node: &str) -> Result<()> {
    let command = vec![
        proxy_binary().display().to_string(),
        format!("--node-name={node}"),
        format!("--cluster-cidr={}", crate::addresses::CLUSTER_CIDR_V4),
        format!("--cluster-cidr={}", crate::addresses::CLUSTER_CIDR_V6),
        format!("--service-cidr={}", crate::addresses::SERVICE_CIDR_V4),
        format!("--service-cidr={}", crate::addresses::SERVICE_CIDR_V6),
    ];
    cluster::start_addon(
        &StateDir::from_env(),
        &proxy_name(node),
        Some(node),
        &command,
    )
}

/// Upstream kube-controller-manager running only its endpointslice-controller, for side-by-side
/// comparisons (`SVCNET_HYPERKUBE` names the binary).
pub fn start_upstream_endpointslice(name: &str) -> Result<()> {
    let hyperkube = std::env::var("SVCNET_HYPERKUBE").map_err(|_| {
        crate::Error::invalid(
            "SVCNET_HYPERKUBE",
            "names the hyperkube binary (make test-e2e sets it)",
        )
    })?;
    let state = StateDir::from_env();
    let command = vec![
        hyperkube,
        "kube-controller-manager".to_owned(),
        format!("--kubeconfig={}", state.kubeconfig().display()),
        "--controllers=endpointslice-controller".to_owned(),
        "--leader-elect=false".to_owned(),
        "--secure-port=0".to_owned(),
    ];
    cluster::start_addon(&state, name, None, &command)
}

/// A plain HTTP GET on loopback (for `/metrics` and `/readyz` of an addon).
pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}
