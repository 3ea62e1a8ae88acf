//! The book of allocated ClusterIPs and NodePorts: the allocator's bitmaps plus the reservations the
//! webhook handed out whose Service has not been seen yet. Plain data; the store persists it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnet::IpNet;
use svcnet_allocator::{IpAllocator, PortAllocator, PortRange, Snapshot};
use svcnet_crds::{AllocationStateSpec, RangeBitmap, Reservation};

use super::Family;
use super::plan::{Denial, Held, Plan, PortSlot, Want};
use crate::Error;

const NODE_PORT: &str = "nodePort";

/// The ranges values are handed out from: ClusterIP ranges primary first, at most one per family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges {
    pub ips: Vec<IpNet>,
    pub ports: PortRange,
}

impl Ranges {
    /// The families, primary first.
    pub fn families(&self) -> Vec<Family> {
        self.ips
            .iter()
            .map(|net| Family::of(net.network()))
            .collect()
    }
}

/// What one request was given, in the order of its [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    pub ips: Vec<IpAddr>,
    pub ports: Vec<u16>,
}

/// The allocation state.
#[derive(Debug, Clone)]
pub struct Book {
    ips: Vec<IpAllocator>,
    ports: PortAllocator,
    /// Service (`namespace/name`) → values handed out to it and not yet seen on it.
    pending: BTreeMap<String, Vec<Held>>,
}

impl Book {
    /// An empty book over `ranges`.
    pub fn new(ranges: &Ranges) -> Result<Book, Error> {
        Ok(Book {
            ips: ranges
                .ips
                .iter()
                .map(|net| IpAllocator::new(*net))
                .collect::<Result<_, _>>()?,
            ports: PortAllocator::new(ranges.ports),
            pending: BTreeMap::new(),
        })
    }

    pub fn ranges(&self) -> Ranges {
        Ranges {
            ips: self.ips.iter().map(IpAllocator::cidr).collect(),
            ports: self.ports.range(),
        }
    }

    pub fn families(&self) -> Vec<Family> {
        self.ranges().families()
    }

    fn ip_allocator(&mut self, family: Family) -> Option<&mut IpAllocator> {
        self.ips
            .iter_mut()
            .find(|a| Family::of(a.cidr().network()) == family)
    }

    /// Whether `value` is inside one of the ranges.
    pub fn in_range(&self, value: Held) -> bool {
        match value {
            Held::Ip(ip) => self.ips.iter().any(|a| a.cidr().contains(&ip)),
            Held::Port(p) => self.ports.range().contains(p),
        }
    }

    /// Whether `value` is allocated.
    pub fn has(&self, value: Held) -> bool {
        match value {
            Held::Ip(ip) => self.ips.iter().any(|a| a.has(ip)),
            Held::Port(p) => self.ports.has(p),
        }
    }

    /// Marks `value` allocated (adopting a value a Service holds). False if it is out of range or
    /// cannot be allocated (a network or broadcast address).
    pub fn adopt(&mut self, value: Held) -> bool {
        match value {
            Held::Ip(ip) => self
                .ip_allocator(Family::of(ip))
                .is_some_and(|a| a.has(ip) || a.allocate(ip).is_ok()),
            Held::Port(p) => self.ports.has(p) || self.ports.allocate(p).is_ok(),
        }
    }

    /// Frees `value`; false if it was not allocated.
    pub fn release(&mut self, value: Held) -> bool {
        match value {
            Held::Ip(ip) => self
                .ip_allocator(Family::of(ip))
                .is_some_and(|a| a.release(ip)),
            Held::Port(p) => self.ports.release(p),
        }
    }

    /// Every allocated value.
    pub fn allocated(&self) -> impl Iterator<Item = Held> + '_ {
        self.ips
            .iter()
            .flat_map(|a| a.iter().map(Held::Ip))
            .chain(self.ports.iter().map(Held::Port))
    }

    pub fn pending(&self) -> &BTreeMap<String, Vec<Held>> {
        &self.pending
    }

    /// Whether a reservation holds `value`.
    pub fn is_pending(&self, value: Held) -> bool {
        self.pending.values().any(|values| values.contains(&value))
    }

    /// Forgets that `values` are reserved for `service` (they were seen on it, or the reservation
    /// expired). Values reserved since stay reserved.
    pub fn settle(&mut self, service: &str, values: &[Held]) {
        if let Some(reserved) = self.pending.get_mut(service) {
            reserved.retain(|v| !values.contains(v));
            if reserved.is_empty() {
                self.pending.remove(service);
            }
        }
    }

    /// Values now seen on a Service: no reservation keeps them any more (a retried request must not
    /// be handed a value another Service holds), and the book has them.
    pub fn seen_held(&mut self, values: &[Held]) {
        self.pending.retain(|_, reserved| {
            reserved.retain(|v| !values.contains(v));
            !reserved.is_empty()
        });
        for &v in values {
            if self.in_range(v) && !self.has(v) {
                self.adopt(v);
            }
        }
    }

    /// Reserves what `plan` asks for `service`, returning the new book. A retried request gets the
    /// values already reserved for the Service (except those the old object holds).
    pub fn grant(&self, service: &str, plan: &Plan) -> Result<(Book, Grant), Denial> {
        let mut book = self.clone();
        let mut reusable: Vec<Held> = book
            .pending
            .get(service)
            .map(|values| {
                values
                    .iter()
                    .filter(|v| !plan.held.contains(v))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        let mut take = |wanted: &dyn Fn(Held) -> bool| {
            reusable
                .iter()
                .position(|&v| wanted(v))
                .map(|i| reusable.remove(i))
        };
        let mut grant = Grant::default();
        for (i, (family, want)) in plan.ips.iter().enumerate() {
            let field = format!("spec.clusterIPs[{}]", plan.kept_ips.len() + i);
            let allocator = book.ip_allocator(*family).ok_or_else(|| {
                Denial(format!("{field}: svcnet has no {family} ClusterIP range"))
            })?;
            let ip = match *want {
                Want::Specific(ip) => {
                    if take(&|v| v == Held::Ip(ip)).is_none() {
                        allocator
                            .allocate(ip)
                            .map_err(|e| ip_denial(&field, ip, &e))?;
                    }
                    ip
                }
                Want::Any => {
                    match take(&|v| matches!(v, Held::Ip(ip) if Family::of(ip) == *family)) {
                        Some(Held::Ip(ip)) => ip,
                        _ => allocator.allocate_next().map_err(|e| {
                            Denial(format!("{field}: no {family} ClusterIP is free: {e}"))
                        })?,
                    }
                }
            };
            grant.ips.push(ip);
        }
        for want in &plan.ports {
            let field = match want.slot {
                PortSlot::Port(i) => format!("spec.ports[{i}].nodePort"),
                PortSlot::HealthCheck => "spec.healthCheckNodePort".to_owned(),
            };
            let port = match want.want {
                Want::Specific(p) => {
                    if take(&|v| v == Held::Port(p)).is_none() {
                        book.ports
                            .allocate(p)
                            .map_err(|e| port_denial(&field, p, &e))?;
                    }
                    p
                }
                Want::Any => match take(&|v| matches!(v, Held::Port(_))) {
                    Some(Held::Port(p)) => p,
                    _ => book
                        .ports
                        .allocate_next()
                        .map_err(|e| Denial(format!("{field}: no NodePort is free: {e}")))?,
                },
            };
            grant.ports.push(port);
        }
        let granted = grant
            .ips
            .iter()
            .map(|&ip| Held::Ip(ip))
            .chain(grant.ports.iter().map(|&p| Held::Port(p)));
        let entry = book.pending.entry(service.to_owned()).or_default();
        for value in granted {
            if !entry.contains(&value) {
                entry.push(value);
            }
        }
        if entry.is_empty() {
            book.pending.remove(service);
        }
        Ok((book, grant))
    }

    /// The same allocations over other ranges, and the values that no longer fit.
    pub fn with_ranges(&self, ranges: &Ranges) -> Result<(Book, Vec<Held>), Error> {
        let mut book = Book::new(ranges)?;
        let mut dropped = Vec::new();
        for value in self.allocated() {
            if !book.adopt(value) {
                dropped.push(value);
            }
        }
        book.pending = self
            .pending
            .iter()
            .map(|(k, values)| {
                let kept: Vec<Held> = values.iter().copied().filter(|v| book.has(*v)).collect();
                (k.clone(), kept)
            })
            .filter(|(_, values)| !values.is_empty())
            .collect();
        Ok((book, dropped))
    }

    /// Usage per range: (range, allocated, free).
    pub fn usage(&self) -> Vec<(String, usize, usize)> {
        let mut usage: Vec<(String, usize, usize)> = self
            .ips
            .iter()
            .map(|a| (a.cidr().to_string(), a.used(), a.free()))
            .collect();
        usage.push((
            self.ports.range().to_string(),
            self.ports.used(),
            self.ports.free(),
        ));
        usage
    }

    /// The persisted form.
    pub fn to_spec(&self) -> AllocationStateSpec {
        let mut ranges: Vec<RangeBitmap> = self
            .ips
            .iter()
            .map(|a| {
                let snapshot = a.snapshot();
                RangeBitmap {
                    name: format!("clusterIP-{}", Family::of(a.cidr().network())),
                    range: snapshot.range,
                    data: BASE64.encode(snapshot.data),
                }
            })
            .collect();
        let snapshot = self.ports.snapshot();
        ranges.push(RangeBitmap {
            name: NODE_PORT.to_owned(),
            range: snapshot.range,
            data: BASE64.encode(snapshot.data),
        });
        let pending: Vec<Reservation> = self
            .pending
            .iter()
            .map(|(service, values)| Reservation {
                service: service.clone(),
                cluster_ips: values
                    .iter()
                    .filter_map(|v| match v {
                        Held::Ip(ip) => Some(ip.to_string()),
                        Held::Port(_) => None,
                    })
                    .collect(),
                node_ports: values
                    .iter()
                    .filter_map(|v| match v {
                        Held::Port(p) => Some(*p),
                        Held::Ip(_) => None,
                    })
                    .collect(),
            })
            .collect();
        AllocationStateSpec {
            ranges,
            pending_count: u32::try_from(pending.len()).unwrap_or(u32::MAX),
            pending,
        }
    }

    /// Reads the persisted form back.
    pub fn from_spec(spec: &AllocationStateSpec) -> Result<Book, Error> {
        let invalid = |what: String| Error::InvalidAllocationState(what);
        let mut ips = Vec::new();
        let mut ports = None;
        for bitmap in &spec.ranges {
            let data = BASE64
                .decode(bitmap.data.as_bytes())
                .map_err(|e| invalid(format!("range {}: data is not base64: {e}", bitmap.name)))?;
            let snapshot = Snapshot {
                range: bitmap.range.clone(),
                data,
            };
            if bitmap.name == NODE_PORT {
                let range: PortRange = bitmap
                    .range
                    .parse()
                    .map_err(|e| invalid(format!("range {}: {e}", bitmap.name)))?;
                let mut allocator = PortAllocator::new(range);
                allocator.restore(&snapshot)?;
                ports = Some(allocator);
            } else {
                let mut allocator = IpAllocator::parse(&bitmap.range)?;
                allocator.restore(&snapshot)?;
                ips.push(allocator);
            }
        }
        let ports = ports.ok_or_else(|| invalid("no nodePort range".to_owned()))?;
        let mut pending = BTreeMap::new();
        for r in &spec.pending {
            let mut values: Vec<Held> = r
                .cluster_ips
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .map(Held::Ip)
                .collect();
            values.extend(r.node_ports.iter().map(|&p| Held::Port(p)));
            pending.insert(r.service.clone(), values);
        }
        Ok(Book {
            ips,
            ports,
            pending,
        })
    }
}

fn ip_denial(field: &str, ip: IpAddr, e: &svcnet_allocator::Error) -> Denial {
    match e {
        svcnet_allocator::Error::AlreadyAllocated { .. } => {
            Denial(format!("{field}: provided IP {ip} is already allocated"))
        }
        other => Denial(format!("{field}: {other}")),
    }
}

fn port_denial(field: &str, port: u16, e: &svcnet_allocator::Error) -> Denial {
    match e {
        svcnet_allocator::Error::PortAlreadyAllocated { .. } => Denial(format!(
            "{field}: provided port {port} is already allocated"
        )),
        other => Denial(format!("{field}: {other}")),
    }
}
