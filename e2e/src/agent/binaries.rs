//! Containers of svcnet's own image run for real: the locally built binary named by the container's
//! command, with its args and env (downward API resolved, `$(VAR)` expanded), inside the pod's network
//! namespace (the node's for host-network pods), and credentials of the pod's ServiceAccount (a bound
//! token from TokenRequest, handed over as a kubeconfig). So the Helm chart's args, env, RBAC and
//! probes are exercised on the local cluster as on a real one. A container that exits is started again
//! after a backoff, as the kubelet does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::error::{Error, Result};
use crate::inventory::{ProcessRecord, StateDir};

/// Images whose name starts with this run locally built binaries.
pub const IMAGE_PREFIX: &str = "ghcr.io/svcnet/svcnet";

/// Whether `container` is of svcnet's image.
pub fn is_svcnet(container: &Container) -> bool {
    container
        .image
        .as_deref()
        .is_some_and(|i| i.starts_with(IMAGE_PREFIX))
}

/// Where the binaries are: `SVCNET_BIN_DIR`, else next to this program.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("SVCNET_BIN_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
        })
        .unwrap_or_default()
}

/// What to run for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub container: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The pod facts the downward API can ask for.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub node_name: String,
    pub pod_ip: String,
    pub host_ip: String,
}

/// The launch of `container` (of svcnet's image): the binary named by `command[0]` in `bin_dir`.
pub fn launch(
    pod: &Pod,
    container: &Container,
    facts: &PodFacts,
    bin_dir: &Path,
) -> Result<Launch> {
    let mut command: Vec<String> = container.command.clone().unwrap_or_default();
    command.extend(container.args.clone().unwrap_or_default());
    let Some(first) = command.first() else {
        return Err(Error::invalid(
            &container.name,
            "no command: svcnet's image has no entrypoint",
        ));
    };
    let name = Path::new(first)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => expand(v, &env),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("metadata.name") => pod.metadata.name.clone().unwrap_or_default(),
                Some("metadata.namespace") => pod.metadata.namespace.clone().unwrap_or_default(),
                Some("metadata.uid") => pod.metadata.uid.clone().unwrap_or_default(),
                Some("spec.nodeName") => facts.node_name.clone(),
                Some("spec.serviceAccountName") => service_account(pod),
                Some("status.podIP") => facts.pod_ip.clone(),
                Some("status.hostIP") => facts.host_ip.clone(),
                // Resource limits, Secrets and ConfigMaps: the chart uses none of them.
                _ => String::new(),
            },
            (None, None) => String::new(),
        };
        env.push((var.name.clone(), value));
    }
    let args = command[1..].iter().map(|a| expand(a, &env)).collect();
    Ok(Launch {
        container: container.name.clone(),
        program: bin_dir.join(name),
        args,
        env,
    })
}

fn service_account(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned())
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, `$$` is a literal `$`, anything
/// else stays as written.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let vars: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(value) = vars.get(&inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A kubeconfig for the pod's ServiceAccount: a token bound to the pod, the apiserver at `server`.
pub async fn kubeconfig(
    client: &kube::Client,
    pod: &Pod,
    server: &str,
    ca_pem: &str,
) -> Result<String> {
    use base64::Engine as _;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client.clone(), &namespace);
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 86400,
            "boundObjectRef": {
                "apiVersion": "v1", "kind": "Pod",
                "name": pod.metadata.name, "uid": pod.metadata.uid,
            },
        },
    });
    let answer: k8s_openapi::api::authentication::v1::TokenRequest = api
        .create_subresource(
            "token",
            &service_account(pod),
            &Default::default(),
            &request,
        )
        .await?;
    let token = answer.status.and_then(|s| s.token).unwrap_or_default();
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: pod\n  user:\n    token: {token}\ncontexts:\n- name: pod\n  context: {{cluster: local, user: pod, namespace: {namespace}}}\ncurrent-context: pod\n"
    ))
}

/// Runs `launch` in `netns` until dropped, starting it again when it exits.
pub async fn supervise(
    launch: Launch,
    netns: String,
    kubeconfig: PathBuf,
    state: StateDir,
    log_name: String,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match run_once(&launch, &netns, &kubeconfig, &state, &log_name).await {
            Ok(status) => {
                tracing::warn!(container = launch.container, %status, "container exited; restarting")
            }
            Err(e) => {
                tracing::warn!(container = launch.container, error = %e, "container did not start; retrying")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// SIGTERM to the process when the supervisor is dropped (the pod is stopped), and its record goes.
struct Terminate {
    pid: u32,
    record: PathBuf,
}

impl Drop for Terminate {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = std::fs::remove_file(&self.record);
    }
}

async fn run_once(
    launch: &Launch,
    netns: &str,
    kubeconfig: &Path,
    state: &StateDir,
    log_name: &str,
) -> Result<std::process::ExitStatus> {
    std::fs::create_dir_all(state.logs())?;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(state.logs().join(format!("{log_name}.log")))?;
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(&launch.program)
        .args(&launch.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let record = ProcessRecord::of(log_name, pid)?;
    std::fs::create_dir_all(state.pod_processes_dir())?;
    let path = state.pod_processes_dir().join(pid.to_string());
    std::fs::write(&path, record.start_ticks.to_string())?;
    let _terminate = Terminate { pid, record: path };
    Ok(child.wait().await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_as_kubernetes_does() {
        let env = vec![("NS".to_owned(), "svcnet".to_owned())];
        assert_eq!(expand("--ns=$(NS)", &env), "--ns=svcnet");
        assert_eq!(expand("$$(NS) $(MISSING) $", &env), "$(NS) $(MISSING) $");
    }

    #[test]
    fn a_container_becomes_the_local_binary_with_downward_api_env() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "svcnet-proxy-abc", "namespace": "svcnet", "uid": "u1"},
            "spec": {"nodeName": "node-1", "containers": [{
                "name": "proxy", "image": "ghcr.io/svcnet/svcnet:0.1.0",
                "command": ["svcnet-proxy"], "args": ["--node-name=$(NODE_NAME)", "--http-addr=0.0.0.0:10256"],
                "env": [
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                ],
            }]},
        }))
        .unwrap();
        let container = &pod.spec.as_ref().unwrap().containers[0];
        assert!(is_svcnet(container));
        let facts = PodFacts {
            node_name: "node-1".into(),
            ..PodFacts::default()
        };
        let l = launch(&pod, container, &facts, Path::new("/bin-dir")).unwrap();
        assert_eq!(l.program, Path::new("/bin-dir/svcnet-proxy"));
        assert_eq!(
            l.args,
            vec!["--node-name=node-1", "--http-addr=0.0.0.0:10256"]
        );
        assert_eq!(l.env[1], ("POD_NAMESPACE".to_owned(), "svcnet".to_owned()));
    }
}
