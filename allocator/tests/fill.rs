//! Filling whole ranges through allocate-next.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use svcnet_allocator::{Error, IpAllocator, PortAllocator, PortRange};

#[test]
fn a_slash_16_fills_to_full_empties_and_fills_again() {
    let mut a = IpAllocator::with_seed("10.96.0.0/16".parse().unwrap(), 1).unwrap();
    for round in 0..2 {
        let mut seen = HashSet::new();
        for _ in 0..65534 {
            assert!(
                seen.insert(a.allocate_next().unwrap()),
                "round {round}: duplicate"
            );
        }
        assert_eq!((a.used(), a.free()), (65534, 0));
        let err = a.allocate_next().unwrap_err();
        assert_eq!(
            err.to_string(),
            "range 10.96.0.0/16 is full (65534 of 65534 addresses allocated)"
        );
        assert!(!seen.contains(&"10.96.0.0".parse().unwrap()));
        assert!(!seen.contains(&"10.96.255.255".parse().unwrap()));
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all.len(), 65534);
        for ip in all {
            assert!(a.release(ip));
        }
        assert_eq!((a.used(), a.free()), (0, 65534));
    }
}

#[test]
fn the_nodeport_range_fills_to_full_empties_and_fills_again() {
    let mut a = PortAllocator::with_seed(PortRange::NODE_PORTS, 1);
    for _ in 0..2 {
        let mut seen = HashSet::new();
        for _ in 0..2768 {
            assert!(seen.insert(a.allocate_next().unwrap()));
        }
        let err = a.allocate_next().unwrap_err();
        assert!(matches!(
            err,
            Error::PortRangeFull {
                used: 2768,
                size: 2768,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "range 30000-32767 is full (2768 of 2768 ports allocated)"
        );
        for port in 30000..=32767 {
            assert!(a.release(port));
        }
        assert_eq!(a.free(), 2768);
    }
}
