//! kube-proxy's health check server for `externalTrafficPolicy: Local` Services: on each Service's
//! `healthCheckNodePort`, `200` with the local endpoint count when this node has ready endpoints,
//! `503` otherwise, so an external load balancer only sends traffic to nodes that can serve it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::model::{ServiceKey, State, TrafficPolicy};

/// What one health check port reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub namespace: String,
    pub name: String,
    pub local_endpoints: usize,
}

/// Health check ports wanted by the state: one per Service with policy Local and a port set, with the
/// number of ready endpoints on this node (a Service counted once across its ports).
pub fn wanted(state: &State) -> BTreeMap<u16, HealthCheck> {
    let mut out = BTreeMap::new();
    for (key, svc) in &state.services {
        let (TrafficPolicy::Local, Some(port)) =
            (svc.external_traffic_policy, svc.health_check_node_port)
        else {
            continue;
        };
        let local = local_ready(state, key);
        let entry = out.entry(port).or_insert_with(|| HealthCheck {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            local_endpoints: 0,
        });
        entry.local_endpoints = entry.local_endpoints.max(local);
    }
    out
}

fn local_ready(state: &State, key: &ServiceKey) -> usize {
    state.endpoints.get(key).map_or(0, |eps| {
        eps.iter()
            .filter(|e| e.ready && e.node_name.as_deref() == Some(state.config.node_name.as_str()))
            .count()
    })
}

/// The body kube-proxy answers with.
pub fn body(check: &HealthCheck) -> String {
    format!(
        "{{\"service\":{{\"namespace\":\"{}\",\"name\":\"{}\"}},\"localEndpoints\":{},\"serviceProxyHealthy\":true}}",
        check.namespace, check.name, check.local_endpoints
    )
}

struct Server {
    check: Arc<std::sync::Mutex<HealthCheck>>,
    task: JoinHandle<()>,
}

/// The running servers, reconciled after every sync.
#[derive(Default)]
pub struct HealthChecks {
    servers: BTreeMap<u16, Server>,
}

impl std::fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecks")
            .field("ports", &self.servers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HealthChecks {
    /// Starts, updates and stops servers to match `wanted`. A port that can't be bound is logged and
    /// tried again on the next sync.
    pub async fn reconcile(&mut self, wanted: BTreeMap<u16, HealthCheck>) {
        self.servers.retain(|port, server| {
            let keep = wanted.contains_key(port);
            if !keep {
                server.task.abort();
            }
            keep
        });
        for (port, check) in wanted {
            if let Some(server) = self.servers.get(&port) {
                *server.check.lock().unwrap_or_else(|e| e.into_inner()) = check;
                continue;
            }
            match TcpListener::bind(("0.0.0.0", port)).await {
                Ok(listener) => {
                    let check = Arc::new(std::sync::Mutex::new(check));
                    let task = tokio::spawn(serve(listener, check.clone()));
                    self.servers.insert(port, Server { check, task });
                }
                Err(e) => tracing::warn!(port, error = %e, "health check port not bound"),
            }
        }
    }
}

async fn serve(listener: TcpListener, check: Arc<std::sync::Mutex<HealthCheck>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let check = check.lock().unwrap_or_else(|e| e.into_inner()).clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let status = if check.local_endpoints > 0 {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let body = body(&check);
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EndpointState, Family, Protocol, ProxyConfig, ServiceState};

    #[test]
    fn local_policy_services_get_a_port_counting_ready_local_endpoints() {
        let mut state = State::new(Family::V4, ProxyConfig::new("node-1", vec![]));
        let key = ServiceKey::new("ns", "web", "http", Protocol::Tcp);
        let ip = |s: &str| s.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        state.services.insert(
            key.clone(),
            ServiceState {
                external_traffic_policy: TrafficPolicy::Local,
                health_check_node_port: Some(32000),
                ..ServiceState::cluster_ip(ip("10.96.0.10"), 80)
            },
        );
        state.endpoints.insert(
            key,
            vec![
                EndpointState::ready(ip("10.244.1.2"), 8080, "node-1"),
                EndpointState::ready(ip("10.244.2.2"), 8080, "node-2"),
                EndpointState::ready(ip("10.244.1.3"), 8080, "node-1").terminating(),
            ],
        );
        let wanted = wanted(&state);
        assert_eq!(wanted[&32000].local_endpoints, 1);
        assert_eq!(
            body(&wanted[&32000]),
            r#"{"service":{"namespace":"ns","name":"web"},"localEndpoints":1,"serviceProxyHealthy":true}"#
        );
    }
}
