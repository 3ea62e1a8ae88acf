//! What a Service create or update asks of the allocator: a pure function of the new object, the old
//! one (on update) and the families svcnet has ranges for.
//!
//! It mirrors what kube-apiserver would do by itself, so the values we set are the ones it would have
//! chosen to need: ClusterIPs per `ipFamilyPolicy`/`ipFamilies`, a NodePort per port of NodePort and
//! LoadBalancer Services (one shared by ports that differ only in protocol), a `healthCheckNodePort` for
//! LoadBalancer Services with `externalTrafficPolicy: Local`. On update, values the old object held are
//! kept, and ports left at 0 inherit the old NodePort of the same name, as the apiserver does
//! (`patchAllocatedValues`), so nothing is allocated that the apiserver would then throw away.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use super::Family;

/// Why a request is refused; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denial(pub String);

/// A value to reserve: a specific one the user asked for, or any free one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want<T> {
    Any,
    Specific(T),
}

/// Where a NodePort goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSlot {
    /// `spec.ports[i].nodePort`.
    Port(usize),
    /// `spec.healthCheckNodePort`.
    HealthCheck,
}

/// One NodePort to reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortWant {
    pub slot: PortSlot,
    pub want: Want<u16>,
    /// Further ports that get the same value (same port number, another protocol).
    pub shared_with: Vec<usize>,
}

/// What to reserve for one request, and how to write the answer back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// ClusterIPs the Service already has and keeps (they come first in `clusterIPs`).
    pub kept_ips: Vec<IpAddr>,
    /// ClusterIPs to reserve, after the kept ones, in `clusterIPs` order.
    pub ips: Vec<(Family, Want<IpAddr>)>,
    /// Write `ipFamilies` (absent on the request) with these.
    pub set_ip_families: Option<Vec<Family>>,
    pub ports: Vec<PortWant>,
    /// Values the old object holds: never handed out again for this request.
    pub held: Vec<Held>,
}

/// A value a Service holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Held {
    Ip(IpAddr),
    Port(u16),
}

impl Plan {
    /// Nothing to reserve and nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.ports.is_empty()
    }
}

/// The plan for `new` (and `old` on update), given the families svcnet has ranges for, primary first.
pub fn plan(new: &Service, old: Option<&Service>, families: &[Family]) -> Result<Plan, Denial> {
    let empty = ServiceSpec::default();
    let spec = new.spec.as_ref().unwrap_or(&empty);
    let old_spec = old.and_then(|o| o.spec.as_ref());
    let mut plan = Plan {
        held: old_spec.map(held_by).unwrap_or_default(),
        ..Plan::default()
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Ok(plan);
    }
    plan_ips(spec, old_spec, families, &mut plan)?;
    plan_node_ports(spec, old_spec, &mut plan)?;
    Ok(plan)
}

/// Every value a Service spec holds.
pub fn held_by(spec: &ServiceSpec) -> Vec<Held> {
    let mut held: Vec<Held> = cluster_ips(spec)
        .into_iter()
        .filter_map(|ip| ip.parse().ok())
        .map(Held::Ip)
        .collect();
    held.extend(
        spec.ports
            .iter()
            .flatten()
            .filter_map(|p| p.node_port)
            .chain(spec.health_check_node_port)
            .filter_map(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .map(Held::Port),
    );
    held.sort();
    held.dedup();
    held
}

/// `clusterIPs`, or `[clusterIP]` when only that is set; empty strings dropped.
fn cluster_ips(spec: &ServiceSpec) -> Vec<&str> {
    let list: Vec<&str> = spec
        .cluster_ips
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() {
        spec.cluster_ip
            .as_deref()
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect()
    } else {
        list
    }
}

fn plan_ips(
    spec: &ServiceSpec,
    old: Option<&ServiceSpec>,
    families: &[Family],
    plan: &mut Plan,
) -> Result<(), Denial> {
    let mut given = cluster_ips(spec);
    if given.first() == Some(&"None") {
        return Ok(()); // headless
    }
    // An update that leaves clusterIP out keeps the old one (the apiserver copies it back).
    let inherited = given.is_empty() && old.is_some_and(|o| !cluster_ips(o).is_empty());
    if inherited {
        given = old.map(cluster_ips).unwrap_or_default();
        if given.first() == Some(&"None") {
            return Ok(());
        }
    }
    let old_ips: Vec<&str> = old.map(cluster_ips).unwrap_or_default();
    let mut ips = Vec::with_capacity(given.len());
    for (i, text) in given.iter().enumerate() {
        let ip: IpAddr = text.parse().map_err(|_| {
            Denial(format!(
                "spec.clusterIPs[{i}]: {text:?} is not an IP address"
            ))
        })?;
        ips.push(ip);
    }
    let requested: Vec<Family> = spec
        .ip_families
        .iter()
        .flatten()
        .map(|f| {
            Family::parse(f).ok_or_else(|| Denial(format!("spec.ipFamilies: unknown family {f:?}")))
        })
        .collect::<Result<_, _>>()?;
    let policy = spec.ip_family_policy.as_deref().unwrap_or("SingleStack");
    let mut wanted: Vec<Family> = if !requested.is_empty() {
        requested.clone()
    } else if !ips.is_empty() {
        ips.iter().map(|ip| Family::of(*ip)).collect()
    } else {
        families.first().copied().into_iter().collect()
    };
    match policy {
        "SingleStack" => {
            if wanted.len() > 1 {
                return Err(Denial(
                    "spec.ipFamilyPolicy: SingleStack allows one IP family; use PreferDualStack or RequireDualStack".into(),
                ));
            }
        }
        "PreferDualStack" | "RequireDualStack" => {
            if wanted.len() == 1 {
                let other = wanted[0].other();
                if families.contains(&other) {
                    wanted.push(other);
                } else if policy == "RequireDualStack" {
                    return Err(Denial(format!(
                        "spec.ipFamilyPolicy: RequireDualStack needs an {other} ClusterIP range, and svcnet has none"
                    )));
                }
            }
        }
        other => {
            return Err(Denial(format!(
                "spec.ipFamilyPolicy: unknown policy {other:?}"
            )));
        }
    }
    if wanted.is_empty() {
        return Err(Denial("svcnet has no ClusterIP range configured".into()));
    }
    for (i, family) in wanted.iter().enumerate() {
        if !families.contains(family) {
            return Err(Denial(format!(
                "spec.ipFamilies[{i}]: svcnet has no {family} ClusterIP range"
            )));
        }
        if let Some(ip) = ips.get(i)
            && Family::of(*ip) != *family
        {
            return Err(Denial(format!(
                "spec.clusterIPs[{i}]: {ip} is not an {family} address, as spec.ipFamilies[{i}] requires"
            )));
        }
    }
    if ips.len() > wanted.len() {
        return Err(Denial(format!(
            "spec.clusterIPs: {} addresses given for {} IP families",
            ips.len(),
            wanted.len()
        )));
    }
    for (i, family) in wanted.iter().enumerate() {
        match ips.get(i) {
            // Held by the old object (or inherited from it): kept as it is.
            Some(ip) if old_ips.contains(&given[i]) => plan.kept_ips.push(*ip),
            Some(ip) => plan.ips.push((*family, Want::Specific(*ip))),
            None => plan.ips.push((*family, Want::Any)),
        }
    }
    if !plan.ips.is_empty() && requested.len() < wanted.len() {
        plan.set_ip_families = Some(wanted);
    }
    if plan.ips.is_empty() {
        plan.kept_ips.clear(); // nothing to write
    }
    Ok(())
}

/// NodePort and LoadBalancer Services need NodePorts, unless a LoadBalancer opts out.
fn needs_node_ports(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

fn needs_health_check(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec.external_traffic_policy.as_deref() == Some("Local")
}

fn port_number(p: &ServicePort) -> Option<u16> {
    p.node_port
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n != 0)
}

fn plan_node_ports(
    spec: &ServiceSpec,
    old: Option<&ServiceSpec>,
    plan: &mut Plan,
) -> Result<(), Denial> {
    let ports: &[ServicePort] = spec.ports.as_deref().unwrap_or_default();
    let old_ports: &[ServicePort] = old.and_then(|o| o.ports.as_deref()).unwrap_or_default();
    let old_held: Vec<u16> = old_ports.iter().filter_map(port_number).collect();
    if needs_node_ports(spec) {
        // The apiserver gives a port left at 0 the old NodePort of the port with the same name, unless
        // another port of the new object already uses it.
        let inherit = old.is_some_and(needs_node_ports);
        let used_by_new: Vec<u16> = ports.iter().filter_map(port_number).collect();
        // Port number → the want that settles that number's NodePort (ports differing only in
        // protocol share one).
        let mut by_number: Vec<(i32, usize)> = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let mut value = port_number(port);
            if value.is_none() && inherit {
                value = old_ports
                    .iter()
                    .find(|o| o.name == port.name)
                    .and_then(port_number)
                    .filter(|v| !used_by_new.contains(v));
                if value.is_some() {
                    // Inherited: the old object holds it; nothing to reserve or write.
                    continue;
                }
            }
            match value {
                Some(v) if old_held.contains(&v) => {}
                Some(v) => {
                    let already = plan.ports.iter().any(|w| w.want == Want::Specific(v));
                    if !already {
                        by_number.push((port.port, plan.ports.len()));
                        plan.ports.push(PortWant {
                            slot: PortSlot::Port(i),
                            want: Want::Specific(v),
                            shared_with: Vec::new(),
                        });
                    }
                }
                None => {
                    let sibling = by_number
                        .iter()
                        .find(|(n, _)| *n == port.port)
                        .map(|&(_, w)| w);
                    match sibling {
                        Some(w) => plan.ports[w].shared_with.push(i),
                        None => {
                            by_number.push((port.port, plan.ports.len()));
                            plan.ports.push(PortWant {
                                slot: PortSlot::Port(i),
                                want: Want::Any,
                                shared_with: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
    }
    if needs_health_check(spec) {
        let given = spec
            .health_check_node_port
            .filter(|&p| p != 0)
            .map(|p| {
                u16::try_from(p)
                    .map_err(|_| Denial(format!("spec.healthCheckNodePort: {p} is not a port")))
            })
            .transpose()?;
        let old_hc = old
            .filter(|o| needs_health_check(o))
            .and_then(|o| o.health_check_node_port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0);
        match (given, old_hc) {
            (Some(v), Some(o)) if v == o => {}
            (None, Some(_)) => {} // inherited by the apiserver
            (Some(v), _) => plan.ports.push(PortWant {
                slot: PortSlot::HealthCheck,
                want: Want::Specific(v),
                shared_with: Vec::new(),
            }),
            (None, None) => plan.ports.push(PortWant {
                slot: PortSlot::HealthCheck,
                want: Want::Any,
                shared_with: Vec::new(),
            }),
        }
    }
    Ok(())
}

/// The JSON patch operations (path, value) that write a grant into the Service.
pub fn patch_ops(plan: &Plan, grant: &super::book::Grant) -> Vec<(String, serde_json::Value)> {
    use serde_json::json;
    let mut ops = Vec::new();
    if !plan.ips.is_empty() {
        let all: Vec<String> = plan
            .kept_ips
            .iter()
            .chain(&grant.ips)
            .map(ToString::to_string)
            .collect();
        ops.push(("/spec/clusterIP".to_owned(), json!(all[0])));
        ops.push(("/spec/clusterIPs".to_owned(), json!(all)));
        if let Some(families) = &plan.set_ip_families {
            let names: Vec<String> = families.iter().map(ToString::to_string).collect();
            ops.push(("/spec/ipFamilies".to_owned(), json!(names)));
        }
    }
    for (want, port) in plan.ports.iter().zip(&grant.ports) {
        let mut slots: Vec<PortSlot> = Vec::new();
        if want.want == Want::Any {
            slots.push(want.slot);
        }
        slots.extend(want.shared_with.iter().map(|&i| PortSlot::Port(i)));
        for slot in slots {
            let path = match slot {
                PortSlot::Port(i) => format!("/spec/ports/{i}/nodePort"),
                PortSlot::HealthCheck => "/spec/healthCheckNodePort".to_owned(),
            };
            ops.push((path, json!(port)));
        }
    }
    ops
}
