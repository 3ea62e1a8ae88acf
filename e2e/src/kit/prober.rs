//! Sends test traffic from a node, a pod or the outside client, and says which pod answered and
//! which client address that pod saw. Only addresses inside the cluster under test are ever used.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns;
use crate::probe::{Ask, Outcome, Probe, parse_outcome};

/// What the test server answered to `whoami`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The name of the pod that answered.
    pub pod: String,
    /// The client address (ip:port) that pod saw.
    pub client: SocketAddr,
}

impl Reply {
    fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split_whitespace();
        let (Some(pod), Some(client)) = (parts.next(), parts.next()) else {
            return Err(Error::invalid("whoami reply", format!("{text:?}")));
        };
        let client = client
            .parse()
            .map_err(|e| Error::invalid("whoami reply", format!("{text:?}: {e}")))?;
        Ok(Reply {
            pod: pod.to_owned(),
            client,
        })
    }
}

/// Where a probe is sent from.
#[derive(Debug, Clone)]
enum Source {
    /// A network namespace of the local cluster (a node, a pod, the outside client), entered by the
    /// test process itself.
    Netns(String),
    /// The test process's own network (on kind: the host, outside the cluster).
    Here,
    /// A pod reached through the API: `kubectl exec` runs `svcnet-testserver probe` in it.
    Exec {
        kubectl: PathBuf,
        namespace: String,
        pod: String,
    },
}

/// A place to send traffic from. Each probe is one [`Probe`], run in-process or in a pod, so the
/// tests read the same on the local cluster and on kind.
#[derive(Debug, Clone)]
pub struct Prober {
    source: Source,
    timeout: Duration,
}

impl Prober {
    pub fn from_netns(netns: impl Into<String>) -> Self {
        Prober::new(Source::Netns(netns.into()))
    }

    /// The test process's own network.
    pub fn here() -> Self {
        Prober::new(Source::Here)
    }

    /// A pod, through the API with `kubectl` (its image must carry `svcnet-testserver`).
    pub fn exec(kubectl: PathBuf, namespace: &str, pod: &str) -> Self {
        Prober::new(Source::Exec {
            kubectl,
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
        })
    }

    fn new(source: Source) -> Self {
        Prober {
            source,
            timeout: Duration::from_secs(2),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects over TCP, asks `whoami`, and returns the answer.
    pub async fn tcp(&self, target: SocketAddr) -> Result<Reply> {
        Reply::parse(&self.send(Ask::Tcp, target).await?)
    }

    /// A plain HTTP GET; returns the status code and the body.
    pub async fn http_get(&self, target: SocketAddr, path: &str) -> Result<(u16, String)> {
        let ask = Ask::Http {
            path: path.to_owned(),
        };
        let text = self.send(ask, target).await?;
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::invalid("http reply", format!("{text:?}")))?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        Ok((status, body))
    }

    /// Sends a `whoami` datagram and returns the answer.
    pub async fn udp(&self, target: SocketAddr) -> Result<Reply> {
        self.udp_from(target, 0).await
    }

    /// Like [`udp`](Self::udp) from source port `port` (0: any): every datagram from one port is
    /// one conntrack flow, as a DNS client or a statsd sender keeps.
    pub async fn udp_from(&self, target: SocketAddr, port: u16) -> Result<Reply> {
        let ask = Ask::Udp { source_port: port };
        Reply::parse(&self.send(ask, target).await?)
    }

    /// Opens a TCP connection from a network namespace (for tests that keep one open across a
    /// change; the local cluster only).
    pub async fn connect(&self, target: SocketAddr) -> Result<TcpStream> {
        let Source::Netns(netns) = &self.source else {
            return Err(Error::invalid(
                "prober",
                "a held connection needs a network namespace of the local cluster",
            ));
        };
        let timeout = self.timeout;
        let stream = netns::within_async(netns, move || {
            let stream = TcpStream::connect_timeout(&target, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            Ok(stream)
        })
        .await?;
        Ok(stream)
    }

    async fn send(&self, ask: Ask, target: SocketAddr) -> Result<String> {
        let probe = Probe {
            ask,
            target,
            timeout: self.timeout,
        };
        let outcome = match &self.source {
            Source::Netns(netns) => {
                let probe = probe.clone();
                netns::within_async(netns, move || Ok(probe.run())).await?
            }
            Source::Here => {
                let probe = probe.clone();
                tokio::task::spawn_blocking(move || probe.run())
                    .await
                    .map_err(|e| Error::invalid("probe", e))?
            }
            Source::Exec {
                kubectl,
                namespace,
                pod,
            } => exec(kubectl, namespace, pod, &probe).await?,
        };
        outcome.map_err(|(failure, message)| Error::Probe {
            from: self.describe(),
            target,
            failure,
            message,
        })
    }

    fn describe(&self) -> String {
        match &self.source {
            Source::Netns(netns) => format!("network namespace {netns}"),
            Source::Here => "the test process".to_owned(),
            Source::Exec { namespace, pod, .. } => format!("pod {namespace}/{pod}"),
        }
    }
}

/// The `kubectl exec` command line that runs `probe` in a pod's first container.
fn exec_args(namespace: &str, pod: &str, probe: &Probe) -> Vec<String> {
    let mut args = vec![
        "exec".to_owned(),
        format!("--namespace={namespace}"),
        pod.to_owned(),
        "--".to_owned(),
        "svcnet-testserver".to_owned(),
        "probe".to_owned(),
    ];
    args.extend(probe.args());
    args
}

async fn exec(
    kubectl: &std::path::Path,
    namespace: &str,
    pod: &str,
    probe: &Probe,
) -> Result<Outcome> {
    let args = exec_args(namespace, pod, probe);
    let out = tokio::process::Command::new(kubectl)
        .args(&args)
        .output()
        .await?;
    // `probe` prints its answer and exits 0 also when the probe failed; anything else is kubectl's
    // or the pod's trouble.
    let stdout = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), stdout.lines().last()) {
        (true, Some(line)) => parse_outcome(line).map_err(|e| Error::invalid("probe", e)),
        _ => Err(Error::Command {
            command: format!("kubectl {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_whoami_replies() {
        let r = Reply::parse("web-1 172.18.0.200:41234\n").ok();
        assert_eq!(
            r,
            Some(Reply {
                pod: "web-1".into(),
                client: SocketAddr::from(([172, 18, 0, 200], 41234)),
            })
        );
        assert!(Reply::parse("garbage").is_err());
    }

    #[test]
    fn exec_runs_the_probe_in_the_pod() {
        let probe = Probe {
            ask: Ask::Tcp,
            target: SocketAddr::from(([10, 96, 0, 10], 80)),
            timeout: Duration::from_secs(2),
        };
        let args = exec_args("probe", "client-x", &probe);
        let dashes = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[..dashes], ["exec", "--namespace=probe", "client-x"]);
        assert_eq!(
            Probe::parse_args(&args[dashes + 3..]),
            Ok(probe),
            "{args:?}"
        );
        assert_eq!(args[dashes + 1..dashes + 3], ["svcnet-testserver", "probe"]);
    }
}
