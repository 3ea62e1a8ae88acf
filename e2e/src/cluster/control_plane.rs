//! The upstream control plane: embedded etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler, all subcommands of the one `hyperkube` binary built from the Kubernetes Go modules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::addresses as plan;
use crate::cluster::pki::Pki;
use crate::cluster::process;
use crate::error::{Error, Result};
use crate::inventory::{Inventory, StateDir};
use crate::wait::{poll_for, poll_until};

/// Ports on 127.0.0.1 of the root namespace.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub api: u16,
    pub etcd_client: u16,
    pub etcd_peer: u16,
}

#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub hyperkube: PathBuf,
    pub ports: Ports,
    pub dual_stack: bool,
    /// Run kube-controller-manager's own endpointslice-controller (for side-by-side comparisons).
    pub upstream_endpointslice: bool,
}

impl ControlPlane {
    fn start(
        &self,
        state: &StateDir,
        inv: &mut Inventory,
        name: &str,
        args: Vec<String>,
    ) -> Result<()> {
        let mut full = vec![name.to_owned()];
        full.extend(args);
        let record = process::spawn(name, &self.hyperkube, &full, &state.logs())?;
        inv.processes.push(record);
        state.save(inv)
    }

    pub async fn start_etcd(&self, state: &StateDir, inv: &mut Inventory) -> Result<()> {
        let data = state.root.join("etcd");
        let args = vec![
            format!("--data-dir={}", data.display()),
            format!(
                "--listen-client-urls=http://127.0.0.1:{}",
                self.ports.etcd_client
            ),
            format!(
                "--listen-peer-urls=http://127.0.0.1:{}",
                self.ports.etcd_peer
            ),
            "--name=svcnet-local".to_owned(),
        ];
        self.start(state, inv, "etcd", args)?;
        let addr = format!("127.0.0.1:{}", self.ports.etcd_client);
        poll_until(
            "etcd to accept connections",
            Duration::from_secs(60),
            || {
                let addr = addr.clone();
                async move { tokio::net::TcpStream::connect(addr).await.is_ok() }
            },
        )
        .await
    }

    pub fn start_apiserver(&self, state: &StateDir, inv: &mut Inventory, pki: &Pki) -> Result<()> {
        let mut service_ranges = plan::SERVICE_CIDR_V4.to_owned();
        if self.dual_stack {
            service_ranges.push(',');
            service_ranges.push_str(plan::SERVICE_CIDR_V6);
        }
        let p = |path: &Path| path.display().to_string();
        let args = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.ports.etcd_client),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--advertise-address={}", plan::API_V4),
            format!("--secure-port={}", self.ports.api),
            format!("--tls-cert-file={}", p(&pki.apiserver_cert)),
            format!("--tls-private-key-file={}", p(&pki.apiserver_key)),
            format!("--client-ca-file={}", p(&pki.ca_cert)),
            format!("--service-account-key-file={}", p(&pki.service_account_pub)),
            format!(
                "--service-account-signing-key-file={}",
                p(&pki.service_account_key)
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
            format!("--service-cluster-ip-range={service_ranges}"),
            format!("--service-node-port-range={}", plan::NODE_PORT_RANGE),
            "--authorization-mode=RBAC".to_owned(),
            "--allow-privileged=true".to_owned(),
            "--profiling=false".to_owned(),
        ];
        self.start(state, inv, "kube-apiserver", args)
    }

    pub fn start_controllers(
        &self,
        state: &StateDir,
        inv: &mut Inventory,
        pki: &Pki,
    ) -> Result<()> {
        let kubeconfig = state.kubeconfig().display().to_string();
        let controllers = if self.upstream_endpointslice {
            "*"
        } else {
            "*,-endpointslice-controller"
        };
        let mut kcm = vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--controllers={controllers}"),
            format!(
                "--service-account-private-key-file={}",
                pki.service_account_key.display()
            ),
            format!("--root-ca-file={}", pki.ca_cert.display()),
            "--leader-elect=false".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            "--secure-port=0".to_owned(),
            "--profiling=false".to_owned(),
        ];
        kcm.extend(client_rate_limit());
        self.start(state, inv, "kube-controller-manager", kcm)?;
        let mut scheduler = vec![
            format!("--kubeconfig={kubeconfig}"),
            "--leader-elect=false".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            "--secure-port=0".to_owned(),
            "--profiling=false".to_owned(),
        ];
        scheduler.extend(client_rate_limit());
        self.start(state, inv, "kube-scheduler", scheduler)
    }
}

/// The controller manager's and scheduler's client rate limit (upstream defaults: 20 QPS, burst 30 for
/// the controller manager; 50/100 for the scheduler), raised so that creating, scheduling and
/// counting tens of thousands of pods of a `--simulated` cluster is not throttled on the client side.
fn client_rate_limit() -> [String; 2] {
    [
        "--kube-api-qps=500".to_owned(),
        "--kube-api-burst=1000".to_owned(),
    ]
}

/// Waits until the apiserver says it is ready (RBAC bootstrap roles included); fails at once if the
/// process exits.
pub async fn wait_apiserver_ready(client: &kube::Client, inv: &Inventory) -> Result<()> {
    let process = inv
        .processes
        .iter()
        .find(|p| p.name == "kube-apiserver")
        .cloned()
        .ok_or_else(|| Error::invalid("kube-apiserver", "not started"))?;
    poll_for("kube-apiserver /readyz", Duration::from_secs(120), || {
        let client = client.clone();
        let process = process.clone();
        async move {
            if !process.is_alive() {
                return Some(Err(Error::invalid(
                    "kube-apiserver",
                    "exited; see logs/kube-apiserver.log",
                )));
            }
            let request = http::Request::get("/readyz").body(Vec::new()).ok()?;
            client.request_text(request).await.ok().map(|_| Ok(()))
        }
    })
    .await?
}
