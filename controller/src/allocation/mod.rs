//! ClusterIP and NodePort allocation: the mutating webhook's brain and the repair loop.
//!
//! - [`plan`]: what a Service create or update asks for (pure).
//! - [`book`]: the allocated values and the reservations not yet seen on a Service (pure), persisted
//!   as the `AllocationState` custom resource.
//! - [`holders`], [`repair`]: which Service holds what, and what repair does about the difference
//!   (pure).
//! - [`store`]: compare-and-swap on the `AllocationState` object, so replicas never hand out a value
//!   twice; [`webhook`], [`tls`], [`leader`]: the edges.

pub mod book;
pub mod holders;
pub mod leader;
pub mod plan;
pub mod ranges;
pub mod repair;
pub mod store;
pub mod tls;
pub mod webhook;

use std::fmt;
use std::net::IpAddr;

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// `IPv4` or `IPv6`, as in `spec.ipFamilies`.
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }

    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}
