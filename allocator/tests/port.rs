//! Behaviour of the NodePort allocator.
#![allow(clippy::unwrap_used)]

use svcnet_allocator::{Error, PortAllocator, PortRange, RandomSource};

/// A random source that always starts scans at the same position.
struct Fixed(usize);

impl RandomSource for Fixed {
    fn below(&mut self, n: usize) -> usize {
        self.0 % n
    }
}

fn node_ports() -> PortAllocator {
    PortAllocator::with_seed(PortRange::NODE_PORTS, 7)
}

fn range(s: &str) -> PortRange {
    s.parse().unwrap()
}

#[test]
fn default_range_is_30000_to_32767_with_2768_ports_and_86_static() {
    let a = node_ports();
    assert_eq!(PortRange::default(), PortRange::NODE_PORTS);
    assert_eq!(a.range().to_string(), "30000-32767");
    assert_eq!(a.size(), 2768);
    assert_eq!(a.free(), 2768);
    assert_eq!(a.static_band_size(), 86);
}

#[test]
fn port_ranges_parse_from_first_dash_last_or_a_single_port() {
    assert_eq!(range("30000-32767"), PortRange::NODE_PORTS);
    assert_eq!(range(" 8080 "), PortRange::new(8080, 8080).unwrap());
    assert_eq!(range("1-65535").size(), 65535);
}

#[test]
fn invalid_port_ranges_are_refused() {
    let err = "32767-30000".parse::<PortRange>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid range 32767-30000: the first port is greater than the last"
    );
    let err = "0-10".parse::<PortRange>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid range 0-10: port 0 cannot be allocated"
    );
    let err = "30000-70000".parse::<PortRange>().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid range \"30000-70000\": \"70000\" is not a port")
    );
    assert!("".parse::<PortRange>().is_err());
}

#[test]
fn allocate_specific_port_then_has_and_counts_reflect_it() {
    let mut a = node_ports();
    a.allocate(30080).unwrap();
    assert!(a.has(30080));
    assert!(!a.has(30081));
    assert_eq!((a.used(), a.free()), (1, 2767));
}

#[test]
fn allocating_an_allocated_port_fails_with_already_allocated() {
    let mut a = node_ports();
    a.allocate(30080).unwrap();
    let err = a.allocate(30080).unwrap_err();
    assert_eq!(err, Error::PortAlreadyAllocated { port: 30080 });
    assert_eq!(err.to_string(), "port 30080 is already allocated");
}

#[test]
fn allocating_outside_the_range_fails_with_not_in_range() {
    let mut a = node_ports();
    assert_eq!(
        a.allocate(29999).unwrap_err().to_string(),
        "port 29999 is not in range 30000-32767"
    );
    assert!(a.allocate(32768).is_err());
    a.allocate(30000).unwrap();
    a.allocate(32767).unwrap();
}

#[test]
fn allocate_next_on_a_full_range_fails_with_range_full() {
    let mut a = PortAllocator::with_seed(range("8000-8002"), 1);
    for _ in 0..3 {
        a.allocate_next().unwrap();
    }
    let err = a.allocate_next().unwrap_err();
    assert_eq!(
        err.to_string(),
        "range 8000-8002 is full (3 of 3 ports allocated)"
    );
}

#[test]
fn release_returns_whether_the_port_was_allocated() {
    let mut a = node_ports();
    a.allocate(31000).unwrap();
    assert!(a.release(31000));
    assert!(!a.release(31000));
    assert!(!a.release(80));
    assert!(!a.has(80));
    assert_eq!(a.used(), 0);
}

#[test]
fn iter_yields_allocated_ports_in_ascending_order() {
    let mut a = node_ports();
    for p in [32767, 30000, 31000, 30064] {
        a.allocate(p).unwrap();
    }
    assert_eq!(a.iter().collect::<Vec<_>>(), [30000, 30064, 31000, 32767]);
}

#[test]
fn allocate_next_starts_in_the_dynamic_band() {
    for seed in 0..50 {
        let mut a = PortAllocator::with_seed(PortRange::NODE_PORTS, seed);
        assert!(a.allocate_next().unwrap() >= 30086);
    }
}

#[test]
fn dynamic_allocation_spills_into_static_band_only_when_upper_band_is_full() {
    let mut a = node_ports();
    for _ in 0..(2768 - 86) {
        let got = a.allocate_next().unwrap();
        assert!(
            got >= 30086,
            "{got} handed out before the upper band was full"
        );
    }
    for _ in 0..86 {
        let got = a.allocate_next().unwrap();
        assert!((30000..30086).contains(&got), "{got}");
    }
    assert!(matches!(
        a.allocate_next(),
        Err(Error::PortRangeFull { .. })
    ));
}

#[test]
fn static_request_succeeds_while_the_dynamic_band_is_full() {
    let mut a = node_ports();
    for p in 30086..=32767 {
        a.allocate(p).unwrap();
    }
    a.allocate(30001).unwrap();
    let got = a.allocate_next().unwrap();
    assert!((30000..30086).contains(&got) && got != 30001);
}

#[test]
fn scans_start_at_the_random_offset_and_wrap_within_each_band() {
    let mut a = PortAllocator::with_rng(PortRange::NODE_PORTS, Fixed(10));
    // Dynamic start 30086 + 10.
    assert_eq!(a.allocate_next().unwrap(), 30096);
    for p in 30096..=32767 {
        a.allocate(p).ok();
    }
    assert_eq!(a.allocate_next().unwrap(), 30086);
    for p in 30086..=32767 {
        a.allocate(p).ok();
    }
    // Static start 30000 + 10.
    assert_eq!(a.allocate_next().unwrap(), 30010);
}

#[test]
fn ranges_of_sixteen_ports_or_fewer_are_all_dynamic() {
    assert_eq!(PortAllocator::new(range("100-115")).static_band_size(), 0);
    assert_eq!(PortAllocator::new(range("100-116")).static_band_size(), 16);
    let mut a = PortAllocator::with_rng(range("100-115"), Fixed(0));
    assert_eq!(a.allocate_next().unwrap(), 100);
}

#[test]
fn the_whole_port_space_is_supported() {
    let mut a = PortAllocator::with_seed(range("1-65535"), 3);
    assert_eq!(a.static_band_size(), 128);
    a.allocate(65535).unwrap();
    a.allocate(1).unwrap();
    assert_eq!(a.iter().collect::<Vec<_>>(), [1, 65535]);
}
