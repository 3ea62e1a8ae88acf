//! Behaviour of the ClusterIP allocator, IPv4 and IPv6.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use ipnet::IpNet;
use svcnet_allocator::{Error, IpAllocator, RandomSource};

/// A random source that always starts scans at the same position.
struct Fixed(usize);

impl RandomSource for Fixed {
    fn below(&mut self, n: usize) -> usize {
        self.0 % n
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn seeded(cidr: &str) -> IpAllocator {
    IpAllocator::with_seed(net(cidr), 42).unwrap()
}

#[test]
fn ipv4_size_excludes_network_and_broadcast() {
    let a = seeded("10.96.0.0/16");
    assert_eq!(a.size(), 65534);
    assert_eq!(a.free(), 65534);
    assert_eq!(a.used(), 0);
    assert_eq!(seeded("192.168.0.0/30").size(), 2);
    assert_eq!(seeded("10.96.0.0/12").size(), (1 << 20) - 2);
}

#[test]
fn ipv6_size_excludes_only_the_network_address() {
    assert_eq!(seeded("fd00:10:96::/112").size(), 65535);
    assert_eq!(seeded("fd00::/108").size(), (1 << 20) - 1);
    assert_eq!(seeded("fd00::/127").size(), 1);
}

#[test]
fn host_bits_in_the_cidr_are_ignored() {
    let a = seeded("10.96.0.5/16");
    assert_eq!(a.cidr(), net("10.96.0.0/16"));
    assert_eq!(a.snapshot().range, "10.96.0.0/16");
}

#[test]
fn allocate_specific_address_then_has_and_counts_reflect_it() {
    let mut a = seeded("10.96.0.0/16");
    a.allocate(ip("10.96.0.10")).unwrap();
    assert!(a.has(ip("10.96.0.10")));
    assert!(!a.has(ip("10.96.0.11")));
    assert_eq!(a.used(), 1);
    assert_eq!(a.free(), 65533);
}

#[test]
fn allocating_an_allocated_address_fails_with_already_allocated() {
    let mut a = seeded("10.96.0.0/16");
    a.allocate(ip("10.96.0.10")).unwrap();
    let err = a.allocate(ip("10.96.0.10")).unwrap_err();
    assert_eq!(
        err,
        Error::AlreadyAllocated {
            ip: ip("10.96.0.10")
        }
    );
    assert_eq!(err.to_string(), "10.96.0.10 is already allocated");
    assert_eq!(a.used(), 1);
}

#[test]
fn allocating_outside_the_range_fails_with_not_in_range() {
    let mut a = seeded("10.96.0.0/16");
    let err = a.allocate(ip("10.97.0.1")).unwrap_err();
    assert_eq!(err.to_string(), "10.97.0.1 is not in range 10.96.0.0/16");
    let err = a.allocate(ip("fd00::1")).unwrap_err();
    assert_eq!(err.to_string(), "fd00::1 is not in range 10.96.0.0/16");
    let mut v6 = seeded("fd00::/112");
    let err = v6.allocate(ip("fd00::1:0")).unwrap_err();
    assert_eq!(err.to_string(), "fd00::1:0 is not in range fd00::/112");
}

#[test]
fn network_and_ipv4_broadcast_addresses_are_refused_as_reserved() {
    let mut a = seeded("10.96.0.0/16");
    let err = a.allocate(ip("10.96.0.0")).unwrap_err();
    assert!(matches!(
        err,
        Error::Reserved {
            kind: "network",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "10.96.0.0 is the network address of range 10.96.0.0/16 and is never allocated"
    );
    let err = a.allocate(ip("10.96.255.255")).unwrap_err();
    assert!(matches!(
        err,
        Error::Reserved {
            kind: "broadcast",
            ..
        }
    ));
    assert!(!a.release(ip("10.96.0.0")));
    assert!(!a.has(ip("10.96.255.255")));

    let mut v6 = seeded("fd00::/112");
    assert!(matches!(
        v6.allocate(ip("fd00::")).unwrap_err(),
        Error::Reserved {
            kind: "network",
            ..
        }
    ));
    // The IPv6 all-ones address is allocatable, as upstream.
    v6.allocate(ip("fd00::ffff")).unwrap();
}

#[test]
fn network_and_broadcast_are_never_handed_out_by_allocate_next() {
    let mut a = seeded("192.168.7.0/29");
    let mut got: Vec<IpAddr> = (0..6).map(|_| a.allocate_next().unwrap()).collect();
    got.sort();
    let want: Vec<IpAddr> = (1..=6).map(|i| ip(&format!("192.168.7.{i}"))).collect();
    assert_eq!(got, want);
    assert!(a.allocate_next().is_err());

    let mut v6 = seeded("fd00::/126");
    let mut got: Vec<IpAddr> = (0..3).map(|_| v6.allocate_next().unwrap()).collect();
    got.sort();
    assert_eq!(got, [ip("fd00::1"), ip("fd00::2"), ip("fd00::3")]);
}

#[test]
fn allocate_next_on_a_full_range_fails_with_range_full() {
    let mut a = seeded("10.0.0.0/30");
    a.allocate_next().unwrap();
    a.allocate_next().unwrap();
    let err = a.allocate_next().unwrap_err();
    assert_eq!(
        err,
        Error::RangeFull {
            range: net("10.0.0.0/30"),
            used: 2,
            size: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "range 10.0.0.0/30 is full (2 of 2 addresses allocated)"
    );
}

#[test]
fn release_returns_whether_the_address_was_allocated() {
    let mut a = seeded("10.96.0.0/16");
    a.allocate(ip("10.96.3.4")).unwrap();
    assert!(a.release(ip("10.96.3.4")));
    assert!(!a.release(ip("10.96.3.4")));
    assert!(!a.release(ip("10.97.0.1")));
    assert!(!a.has(ip("10.96.3.4")));
    assert_eq!(a.used(), 0);
    a.allocate(ip("10.96.3.4")).unwrap();
}

#[test]
fn iter_yields_allocated_addresses_in_ascending_order() {
    let mut a = seeded("fd00:10:96::/112");
    for s in [
        "fd00:10:96::ffff",
        "fd00:10:96::1",
        "fd00:10:96::ab",
        "fd00:10:96::40",
    ] {
        a.allocate(ip(s)).unwrap();
    }
    let got: Vec<IpAddr> = a.iter().collect();
    let want = [
        "fd00:10:96::1",
        "fd00:10:96::40",
        "fd00:10:96::ab",
        "fd00:10:96::ffff",
    ];
    assert_eq!(got, want.map(ip));
}

#[test]
fn static_band_is_the_lowest_addresses_sized_per_kep_3070() {
    assert_eq!(seeded("10.96.0.0/16").static_band_size(), 256);
    assert_eq!(seeded("10.96.0.0/12").static_band_size(), 256);
    assert_eq!(seeded("10.96.0.0/20").static_band_size(), 256);
    assert_eq!(seeded("10.96.0.0/24").static_band_size(), 16);
    assert_eq!(seeded("10.96.0.0/27").static_band_size(), 16);
    assert_eq!(seeded("fd00::/108").static_band_size(), 256);
}

#[test]
fn ranges_of_sixteen_addresses_or_fewer_have_no_static_band() {
    assert_eq!(seeded("10.96.0.0/28").static_band_size(), 0);
    assert_eq!(seeded("fd00::/124").static_band_size(), 0);
    // With no static band, the whole range is dynamic.
    let mut a = IpAllocator::with_rng(net("10.96.0.0/28"), Fixed(0)).unwrap();
    assert_eq!(a.allocate_next().unwrap(), ip("10.96.0.1"));
}

#[test]
fn allocate_next_starts_in_the_dynamic_band() {
    for seed in 0..50 {
        let mut a = IpAllocator::with_seed(net("10.96.0.0/24"), seed).unwrap();
        let got = a.allocate_next().unwrap();
        // Static band: 10.96.0.1 ..= 10.96.0.16.
        assert!(got > ip("10.96.0.16") && got < ip("10.96.0.255"), "{got}");
    }
}

#[test]
fn dynamic_scan_wraps_within_the_upper_band() {
    // /24: static band offsets 0..16, dynamic 16..254. Start at the last
    // dynamic address, which is taken: the scan wraps to the band's bottom.
    let mut a = IpAllocator::with_rng(net("10.96.0.0/24"), Fixed(237)).unwrap();
    a.allocate(ip("10.96.0.254")).unwrap();
    assert_eq!(a.allocate_next().unwrap(), ip("10.96.0.17"));
}

#[test]
fn dynamic_allocation_spills_into_static_band_only_when_upper_band_is_full() {
    let mut a = seeded("10.96.0.0/24");
    for _ in 0..(254 - 16) {
        let got = a.allocate_next().unwrap();
        assert!(
            got > ip("10.96.0.16"),
            "{got} handed out before the upper band was full"
        );
    }
    assert_eq!(a.used(), 238);
    for _ in 0..16 {
        let got = a.allocate_next().unwrap();
        assert!(got <= ip("10.96.0.16") && got >= ip("10.96.0.1"), "{got}");
    }
    assert!(matches!(a.allocate_next(), Err(Error::RangeFull { .. })));
}

#[test]
fn static_request_succeeds_while_the_dynamic_band_is_full() {
    let mut a = seeded("10.96.0.0/24");
    for i in 17..=254 {
        a.allocate(ip(&format!("10.96.0.{i}"))).unwrap();
    }
    a.allocate(ip("10.96.0.10")).unwrap();
    // A free dynamic address is picked up again after a release.
    assert!(a.release(ip("10.96.0.200")));
    assert_eq!(a.allocate_next().unwrap(), ip("10.96.0.200"));
}

#[test]
fn static_band_scan_starts_at_a_random_offset_and_wraps_within_it() {
    let mut a = IpAllocator::with_rng(net("10.96.0.0/24"), Fixed(5)).unwrap();
    for i in 17..=254 {
        a.allocate(ip(&format!("10.96.0.{i}"))).unwrap();
    }
    // Static start offset 5 = 10.96.0.6.
    assert_eq!(a.allocate_next().unwrap(), ip("10.96.0.6"));
    for i in 7..=16 {
        a.allocate(ip(&format!("10.96.0.{i}"))).unwrap();
    }
    assert_eq!(a.allocate_next().unwrap(), ip("10.96.0.1"));
}

#[test]
fn ranges_larger_than_twenty_host_bits_are_refused() {
    let err = IpAllocator::new(net("10.0.0.0/11")).unwrap_err();
    assert!(matches!(err, Error::InvalidRange { .. }));
    assert_eq!(
        err.to_string(),
        "invalid range 10.0.0.0/11: 21 host bits is too large; at most 20 are supported \
         (prefix /12 or longer, 2^20 addresses)"
    );
    let err = IpAllocator::new(net("fd00::/64")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid range fd00::/64: 64 host bits"),
        "{err}"
    );
    assert!(IpAllocator::new(net("fd00::/107")).is_err());
    assert!(IpAllocator::new(net("fd00::/108")).is_ok());
}

#[test]
fn ranges_without_an_allocatable_address_are_refused() {
    for cidr in ["10.0.0.0/31", "10.0.0.1/32", "fd00::1/128"] {
        let err = IpAllocator::new(net(cidr)).unwrap_err();
        assert!(err.to_string().contains("no allocatable address"), "{err}");
    }
}

#[test]
fn unparsable_ranges_are_refused_as_invalid() {
    let err = IpAllocator::parse("10.96.0.0").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid range \"10.96.0.0\": not a CIDR"),
        "{err}"
    );
    assert_eq!(IpAllocator::parse(" 10.96.0.0/16 ").unwrap().size(), 65534);
}

#[test]
fn same_seed_gives_the_same_allocation_sequence() {
    let mut a = seeded("10.96.0.0/16");
    let mut b = seeded("10.96.0.0/16");
    for _ in 0..100 {
        assert_eq!(a.allocate_next().unwrap(), b.allocate_next().unwrap());
    }
}
