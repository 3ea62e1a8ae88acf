//! The pod loop: one task owns every pod of the node and handles, one at a time, watch events,
//! probe results and the end of grace periods. Status writes go through [`StatusWriter`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::AgentConfig;
use super::binaries;
use super::ipam::PodIpam;
use super::probe::{self, Tracker};
use super::sandbox::{self, SandboxNames};
use super::status::{PodRuntime, now_rfc3339, running_status};
use super::status_writer::StatusWriter;
use crate::addresses as plan;
use crate::error::{Error, Result};
use crate::netns;
use crate::testserver::{self, Identity, Protocol};

/// Set to "false" on a pod to make it unhealthy: its test server's /healthz answers 503 (so an
/// httpGet readiness probe on it fails), and a pod without a probe (or a simulated one) turns not ready.
pub const HEALTHY_ANNOTATION: &str = "e2e.svcnet.dev/healthy";

#[derive(Debug)]
enum Internal {
    Probe {
        uid: String,
        container: String,
        ready: bool,
    },
    GraceOver {
        uid: String,
        namespace: String,
        name: String,
    },
}

/// A pod the agent runs.
#[derive(Debug)]
struct Running {
    pod: Pod,
    ips: Vec<IpAddr>,
    /// None for host-network and simulated pods.
    sandbox: Option<SandboxNames>,
    identity: Option<Arc<Identity>>,
    /// The test server and the probe loops; dropping the sets stops them.
    servers: JoinSet<()>,
    probes: JoinSet<()>,
    /// Containers of svcnet's image, running the local binaries; dropping the set stops them.
    binaries: JoinSet<()>,
    probed: HashSet<String>,
    runtime: PodRuntime,
    /// When the current grace period ends; a later, shorter one moves it earlier.
    grace_deadline: Option<tokio::time::Instant>,
}

struct Agent {
    cfg: AgentConfig,
    client: kube::Client,
    ipam: PodIpam,
    pods: HashMap<String, Running>,
    /// Uids seen since the watch (re)listed; pods not seen by the end of the list are gone.
    relisting: Option<HashSet<String>>,
    /// Pods stopped for good whose object still exists: later events for them must not restart them.
    stopped: HashSet<String>,
    internal: mpsc::UnboundedSender<Internal>,
    writer: StatusWriter,
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn is_unhealthy(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEALTHY_ANNOTATION))
        .is_some_and(|v| v == "false")
}

fn is_finished(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// Every (protocol, port) the pod's containers declare; SCTP is not served.
/// The pod without its containers of svcnet's image (they run the real binaries, not the test server).
fn without_svcnet_containers(pod: &Pod) -> Pod {
    let mut pod = pod.clone();
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.retain(|c| !binaries::is_svcnet(c));
    }
    pod
}

fn container_ports(pod: &Pod) -> Vec<(Protocol, u16)> {
    let mut ports: Vec<(Protocol, u16)> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => return None,
            };
            Some((protocol, u16::try_from(p.container_port).ok()?))
        })
        .collect();
    ports.sort_by_key(|(proto, port)| (*port, *proto == Protocol::Udp));
    ports.dedup();
    ports
}

pub async fn run(client: kube::Client, cfg: AgentConfig) -> Result<()> {
    let api: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", cfg.node_name);
    let mut ipam = PodIpam::new(
        cfg.pod_cidr_v4(),
        cfg.dual_stack.then(|| plan::pod_cidr_v6(cfg.node_index)),
    );
    // After a restart, keep the addresses of pods that already run here before handing out any.
    for pod in api.list(&ListParams::default().fields(&selector)).await? {
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
        if let Some(ip) = ip.and_then(|ip| ip.parse().ok())
            && !host_network(&pod)
        {
            ipam.reserve(ip);
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut agent = Agent {
        writer: StatusWriter::spawn(client.clone()),
        cfg,
        client,
        ipam,
        pods: HashMap::new(),
        relisting: None,
        stopped: HashSet::new(),
        internal: tx,
    };
    let mut events = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    agent.applied(pod).await;
                }
                Some(Ok(watcher::Event::Delete(pod))) => {
                    let uid = uid_of(&pod);
                    agent.teardown(&uid).await;
                    agent.stopped.remove(&uid);
                }
                Some(Ok(watcher::Event::Init)) => agent.relisting = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitDone)) => agent.relist_done().await,
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                None => return Err(Error::invalid("pod watch", "ended")),
            },
            Some(internal) = rx.recv() => agent.internal(internal).await,
        }
    }
}

impl Agent {
    async fn applied(&mut self, pod: Pod) {
        let uid = uid_of(&pod);
        if let Some(seen) = self.relisting.as_mut() {
            seen.insert(uid.clone());
        }
        if self.stopped.contains(&uid) {
            return;
        }
        if is_finished(&pod) {
            self.teardown(&uid).await;
            self.stopped.insert(uid);
            return;
        }
        if !self.pods.contains_key(&uid) && pod.metadata.deletion_timestamp.is_some() {
            // Never start a pod that is already going away (seen after an agent restart, say): clear
            // what a previous agent may have left and finish the deletion when the grace period ends.
            self.stopped.insert(uid.clone());
            self.remove_leftover_sandbox(&uid).await;
            let remaining = pod
                .metadata
                .deletion_timestamp
                .as_ref()
                .and_then(|t| {
                    let left = t.0.duration_since(jiff::Timestamp::now());
                    Duration::try_from(left).ok()
                })
                .unwrap_or_default();
            self.grace_timer(&pod, remaining);
            return;
        }
        if !self.pods.contains_key(&uid) {
            match self.start(&pod).await {
                Ok(running) => {
                    tracing::info!(pod = %pod_ref(&pod), ips = ?running.ips, "pod started");
                    self.pods.insert(uid.clone(), running);
                }
                Err(e) => {
                    tracing::error!(pod = %pod_ref(&pod), error = %e, "pod could not start");
                    return;
                }
            }
        }
        let simulated = self.cfg.simulated;
        let Some(running) = self.pods.get_mut(&uid) else {
            return;
        };
        let unhealthy = is_unhealthy(&pod);
        if let Some(identity) = &running.identity {
            identity.healthy.store(!unhealthy, Ordering::Relaxed);
        }
        // Containers without a probe (and every container of a simulated pod) follow the annotation.
        let mut changed = false;
        for (name, ready) in running.runtime.container_ready.iter_mut() {
            if (simulated || !running.probed.contains(name)) && *ready == unhealthy {
                *ready = !unhealthy;
                changed = true;
            }
        }
        if changed {
            running.runtime.ready_since = now_rfc3339();
        }
        let grace = pod.metadata.deletion_timestamp.as_ref().map(|_| {
            let secs = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        });
        if let Some(grace) = grace {
            // As the kubelet does: SIGTERM to svcnet's processes at once (dropping their supervisors),
            // the pod goes when the grace period ends.
            if !running.binaries.is_empty() {
                running.binaries = JoinSet::new();
            }
            let deadline = tokio::time::Instant::now() + grace;
            if running
                .grace_deadline
                .is_none_or(|current| deadline < current)
            {
                running.grace_deadline = Some(deadline);
                tracing::info!(pod = %pod_ref(&pod), grace = grace.as_secs(), "pod terminating");
                self.grace_timer(&pod, grace);
            }
        }
        if let Some(running) = self.pods.get_mut(&uid) {
            running.pod = pod;
        }
        self.report(&uid);
    }

    /// Sends `GraceOver` for the pod after `grace`.
    fn grace_timer(&self, pod: &Pod, grace: Duration) {
        let internal = self.internal.clone();
        let event = Internal::GraceOver {
            uid: uid_of(pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
        };
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = internal.send(event);
        });
    }

    async fn remove_leftover_sandbox(&self, uid: &str) {
        if self.cfg.simulated {
            return;
        }
        let names = sandbox::names(&self.cfg.cluster_id, uid);
        let state = self.cfg.state.clone();
        let _ = tokio::task::spawn_blocking(move || sandbox::destroy(&state, &names)).await;
    }

    async fn start(&mut self, pod: &Pod) -> Result<Running> {
        let uid = uid_of(pod);
        let host = host_network(pod);
        let ips: Vec<IpAddr> = if host {
            self.cfg
                .host_ips()
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect()
        } else {
            let existing = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
            let reserved = existing
                .and_then(|ip| ip.parse().ok())
                .and_then(|ip| self.ipam.reserve(ip));
            match reserved.or_else(|| self.ipam.allocate()) {
                Some(ips) => ips,
                None => return Err(Error::invalid(pod_ref(pod), "the node's pod CIDR is full")),
            }
        };
        let mut running = Running {
            pod: pod.clone(),
            ips: ips.clone(),
            sandbox: None,
            identity: None,
            servers: JoinSet::new(),
            probes: JoinSet::new(),
            binaries: JoinSet::new(),
            probed: HashSet::new(),
            runtime: PodRuntime {
                ips,
                host_ips: self.cfg.host_ips(),
                started_at: now_rfc3339(),
                container_ready: BTreeMap::new(),
                ready_since: now_rfc3339(),
            },
            grace_deadline: None,
        };
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        if !self.cfg.simulated {
            if let Err(e) = self.start_network(pod, &uid, host, &mut running).await {
                self.release(&running);
                if running.sandbox.is_some() {
                    self.remove_leftover_sandbox(&uid).await;
                }
                return Err(e);
            }
            if let Err(e) = self.start_binaries(pod, &uid, host, &mut running).await {
                self.release(&running);
                if running.sandbox.is_some() {
                    self.remove_leftover_sandbox(&uid).await;
                }
                return Err(e);
            }
            let probe_from = self.cfg.netns.clone();
            let target = running.ips[0];
            for c in &containers {
                if let Some((check, schedule)) = probe::readiness(c) {
                    running.probed.insert(c.name.clone());
                    running.probes.spawn(probe_loop(
                        self.internal.clone(),
                        uid.clone(),
                        c.name.clone(),
                        probe_from.clone(),
                        target,
                        check,
                        schedule,
                    ));
                }
            }
        }
        for c in &containers {
            let ready = !running.probed.contains(&c.name) && !is_unhealthy(pod);
            running
                .runtime
                .container_ready
                .insert(c.name.clone(), ready);
        }
        Ok(running)
    }

    /// The sandbox (unless host network) and the test server on the pod's container ports.
    async fn start_network(
        &self,
        pod: &Pod,
        uid: &str,
        host: bool,
        running: &mut Running,
    ) -> Result<()> {
        let serve_in = if host {
            self.cfg.netns.clone()
        } else {
            let names = sandbox::names(&self.cfg.cluster_id, uid);
            let (state, node_ns, index) = (
                self.cfg.state.clone(),
                self.cfg.netns.clone(),
                self.cfg.node_index,
            );
            let (n, ips) = (names.clone(), running.ips.clone());
            running.sandbox = Some(names.clone());
            tokio::task::spawn_blocking(move || sandbox::create(&state, &node_ns, index, &n, &ips))
                .await
                .map_err(|e| Error::invalid("sandbox task", e))??;
            names.netns
        };
        // svcnet's own containers bind their ports themselves.
        let ports = container_ports(&without_svcnet_containers(pod));
        let bound = netns::within_async(&serve_in, move || {
            ports
                .into_iter()
                .map(|(proto, port)| testserver::bind(proto, port))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await?;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let identity = Identity::new(&name);
        running.servers = testserver::serve(bound, identity.clone())?;
        running.identity = Some(identity);
        Ok(())
    }

    /// Containers of svcnet's image: the local binaries, with the pod's ServiceAccount credentials.
    async fn start_binaries(
        &self,
        pod: &Pod,
        uid: &str,
        host: bool,
        running: &mut Running,
    ) -> Result<()> {
        let containers: Vec<_> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| binaries::is_svcnet(c))
            .cloned()
            .collect();
        if containers.is_empty() {
            return Ok(());
        }
        let netns = match &running.sandbox {
            Some(names) if !host => names.netns.clone(),
            _ => self.cfg.netns.clone(),
        };
        let facts = binaries::PodFacts {
            node_name: self.cfg.node_name.clone(),
            pod_ip: running
                .ips
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
            host_ip: self.cfg.node_ipv4(),
        };
        let server = format!("https://{}:{}", crate::addresses::API_V4, self.cfg.api_port);
        let ca = std::fs::read_to_string(self.cfg.state.pki().join("ca.crt"))?;
        let kubeconfig = binaries::kubeconfig(&self.client, pod, &server, &ca).await?;
        let dir = self.cfg.state.root.join("pod-credentials");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{uid}.kubeconfig"));
        std::fs::write(&path, kubeconfig)?;
        let bin_dir = binaries::bin_dir();
        for c in &containers {
            let launch = binaries::launch(pod, c, &facts, &bin_dir)?;
            let log = format!(
                "pod-{}-{}-{}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default(),
                c.name
            );
            tracing::info!(pod = %pod_ref(pod), container = c.name, program = %launch.program.display(), "starting svcnet's binary");
            running.binaries.spawn(binaries::supervise(
                launch,
                netns.clone(),
                path.clone(),
                self.cfg.state.clone(),
                log,
            ));
        }
        Ok(())
    }

    fn release(&mut self, running: &Running) {
        if running.sandbox.is_some() || self.cfg.simulated {
            for ip in &running.ips {
                self.ipam.release(*ip);
            }
        }
    }

    async fn teardown(&mut self, uid: &str) {
        let Some(running) = self.pods.remove(uid) else {
            return;
        };
        self.writer.forget(uid);
        let _ = std::fs::remove_file(
            self.cfg
                .state
                .root
                .join("pod-credentials")
                .join(format!("{uid}.kubeconfig")),
        );
        if let Some(names) = running.sandbox.clone() {
            let state = self.cfg.state.clone();
            let destroyed =
                tokio::task::spawn_blocking(move || sandbox::destroy(&state, &names)).await;
            if let Ok(Err(e)) | Err(e) = destroyed.map_err(|e| Error::invalid("sandbox task", e)) {
                tracing::warn!(pod = %pod_ref(&running.pod), error = %e, "sandbox removal failed");
            }
        }
        self.release(&running);
        tracing::info!(pod = %pod_ref(&running.pod), "pod stopped");
    }

    async fn relist_done(&mut self) {
        let Some(seen) = self.relisting.take() else {
            return;
        };
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|uid| !seen.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.teardown(&uid).await;
        }
        self.stopped.retain(|uid| seen.contains(uid));
    }

    async fn internal(&mut self, event: Internal) {
        match event {
            Internal::Probe {
                uid,
                container,
                ready,
            } => {
                if let Some(running) = self.pods.get_mut(&uid) {
                    running.runtime.container_ready.insert(container, ready);
                    running.runtime.ready_since = now_rfc3339();
                    self.report(&uid);
                }
            }
            Internal::GraceOver {
                uid,
                namespace,
                name,
            } => {
                self.teardown(&uid).await;
                self.stopped.insert(uid.clone());
                // The final delete, as the kubelet does once the containers are gone.
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                tokio::spawn(async move {
                    if let Err(e) = api.delete(&name, &params).await {
                        tracing::debug!(pod = %name, error = %e, "final delete");
                    }
                });
            }
        }
    }

    fn report(&mut self, uid: &str) {
        if let Some(running) = self.pods.get(uid) {
            let status: Value = running_status(&running.pod, &running.runtime);
            self.writer.write(uid, &running.pod, status);
        }
    }
}

async fn probe_loop(
    tx: mpsc::UnboundedSender<Internal>,
    uid: String,
    container: String,
    from_netns: String,
    target: IpAddr,
    check: probe::Check,
    schedule: probe::Schedule,
) {
    tokio::time::sleep(schedule.initial_delay).await;
    let mut tracker = Tracker::new(schedule.clone());
    let mut tick = tokio::time::interval(schedule.period);
    loop {
        tick.tick().await;
        let ok = probe::run_once(&from_netns, target, &check, schedule.timeout).await;
        if let Some(ready) = tracker.record(ok) {
            let event = Internal::Probe {
                uid: uid.clone(),
                container: container.clone(),
                ready,
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    }
}

pub fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}
