//! Readiness probes, run for real from the node namespace to the pod, as the kubelet runs them:
//! httpGet (a 2xx or 3xx answer) and tcpSocket (a connection).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::netns;

/// One probe check, resolved against the container: what to connect to and what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Http { port: u16, path: String },
    Tcp { port: u16 },
}

/// The probe's schedule and thresholds, with the kubelet's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

fn secs(v: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
}

fn threshold(v: Option<i32>, default: u32) -> u32 {
    v.and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// The readiness check of a container, or None when it has none we can run (exec and grpc probes are
/// treated as absent: the container counts as ready once started).
pub fn readiness(container: &Container) -> Option<(Check, Schedule)> {
    let probe: &Probe = container.readiness_probe.as_ref()?;
    let port_of = |port: &IntOrString| -> Option<u16> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).ok(),
            IntOrString::String(name) => container
                .ports
                .as_ref()?
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        }
    };
    let check = if let Some(http) = &probe.http_get {
        Check::Http {
            port: port_of(&http.port)?,
            path: http.path.clone().unwrap_or_else(|| "/".to_owned()),
        }
    } else if let Some(tcp) = &probe.tcp_socket {
        Check::Tcp {
            port: port_of(&tcp.port)?,
        }
    } else {
        return None;
    };
    let schedule = Schedule {
        initial_delay: secs(probe.initial_delay_seconds, 0),
        period: secs(probe.period_seconds, 10),
        timeout: secs(probe.timeout_seconds, 1),
        success_threshold: threshold(probe.success_threshold, 1),
        failure_threshold: threshold(probe.failure_threshold, 3),
    };
    Some((check, schedule))
}

/// Runs one check from inside `netns` against `ip`; true on success.
pub async fn run_once(netns_name: &str, ip: IpAddr, check: &Check, timeout: Duration) -> bool {
    let check = check.clone();
    let result = netns::within_async(netns_name, move || {
        let (port, request) = match &check {
            Check::Tcp { port } => (*port, None),
            Check::Http { port, path } => (
                *port,
                Some(format!(
                    "GET {path} HTTP/1.1\r\nHost: {ip}\r\nUser-Agent: kube-probe/1.36\r\nConnection: close\r\n\r\n"
                )),
            ),
        };
        let mut stream = TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout)?;
        let Some(request) = request else {
            return Ok(true);
        };
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(request.as_bytes())?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        // "HTTP/1.1 200": the status code's first digit decides.
        Ok(matches!(head.get(9), Some(b'2' | b'3')))
    })
    .await;
    result.unwrap_or(false)
}

/// Turns a stream of check results into readiness, with the kubelet's thresholds: not ready at first,
/// ready after `success_threshold` successes in a row, not ready after `failure_threshold` failures.
#[derive(Debug, Clone)]
pub struct Tracker {
    schedule: Schedule,
    ready: bool,
    streak: u32,
}

impl Tracker {
    pub fn new(schedule: Schedule) -> Self {
        Tracker {
            schedule,
            ready: false,
            streak: 0,
        }
    }

    /// Records one result; returns the new readiness when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.ready {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if success {
            self.schedule.success_threshold
        } else {
            self.schedule.failure_threshold
        };
        if self.streak >= needed {
            self.ready = success;
            self.streak = 0;
            Some(success)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }

    #[test]
    fn ready_after_one_success_and_unready_after_three_failures() {
        let mut t = Tracker::new(schedule());
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "web",
            "ports": [ { "name": "http", "containerPort": 8080 } ],
            "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" }, "periodSeconds": 1 },
        }))
        .unwrap_or_default();
        let (check, schedule) = readiness(&c).unwrap_or((Check::Tcp { port: 0 }, schedule()));
        assert_eq!(
            check,
            Check::Http {
                port: 8080,
                path: "/healthz".into()
            }
        );
        assert_eq!(schedule.period, Duration::from_secs(1));
        assert_eq!(schedule.failure_threshold, 3);
    }
}
