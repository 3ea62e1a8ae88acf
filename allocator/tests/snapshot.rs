//! Snapshot and restore, including grown and shrunk ranges.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use svcnet_allocator::{Error, IpAllocator, PortAllocator, PortRange, Snapshot};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(cidr: &str) -> IpAllocator {
    IpAllocator::with_seed(cidr.parse().unwrap(), 9).unwrap()
}

fn ports(range: &str) -> PortAllocator {
    PortAllocator::with_seed(range.parse().unwrap(), 9)
}

#[test]
fn ip_snapshot_then_restore_gives_the_same_state() {
    let mut a = ips("10.96.0.0/16");
    a.allocate(ip("10.96.0.10")).unwrap();
    for _ in 0..500 {
        a.allocate_next().unwrap();
    }
    let snap = a.snapshot();
    assert_eq!(snap.range, "10.96.0.0/16");
    let mut b = ips("10.96.0.0/16");
    b.allocate(ip("10.96.0.99")).unwrap(); // replaced by the restore
    assert!(b.restore(&snap).unwrap().is_empty());
    assert_eq!(b.iter().collect::<Vec<_>>(), a.iter().collect::<Vec<_>>());
    assert_eq!((b.used(), b.free()), (a.used(), a.free()));
    assert_eq!(b.snapshot(), snap);
}

#[test]
fn restored_static_band_usage_is_honoured_by_allocate_next() {
    let mut a = ips("10.96.0.0/24");
    for i in 17..=254 {
        a.allocate(ip(&format!("10.96.0.{i}"))).unwrap();
    }
    for i in 1..=15 {
        a.allocate(ip(&format!("10.96.0.{i}"))).unwrap();
    }
    let mut b = ips("10.96.0.0/24");
    b.restore(&a.snapshot()).unwrap();
    assert_eq!(b.allocate_next().unwrap(), ip("10.96.0.16"));
    assert!(b.allocate_next().is_err());
}

#[test]
fn empty_allocator_snapshots_to_empty_data() {
    let snap = ips("fd00::/108").snapshot();
    assert_eq!(
        snap,
        Snapshot {
            range: "fd00::/108".into(),
            data: vec![]
        }
    );
    assert!(ips("fd00::/108").restore(&snap).unwrap().is_empty());
}

#[test]
fn snapshot_data_uses_upstreams_big_endian_bitmap_encoding() {
    let mut a = ips("10.96.0.0/24");
    a.allocate(ip("10.96.0.1")).unwrap(); // offset 0
    a.allocate(ip("10.96.0.10")).unwrap(); // offset 9
    assert_eq!(a.snapshot().data, [0x02, 0x01]);
}

#[test]
fn snapshot_to_a_different_range_is_refused() {
    let mut a = ips("10.96.0.0/16");
    a.allocate(ip("10.96.0.10")).unwrap();
    let snap = a.snapshot();
    let mut other = ips("10.97.0.0/16");
    let err = other.restore(&snap).unwrap_err();
    assert_eq!(
        err.to_string(),
        "snapshot of range 10.96.0.0/16 cannot be restored into range 10.97.0.0/16: \
         the network addresses differ"
    );
    assert!(matches!(
        ips("fd00::/112").restore(&snap),
        Err(Error::RangeMismatch { .. })
    ));
    // A shifted base is a different range even when it overlaps.
    assert!(matches!(
        ips("10.96.128.0/17").restore(&snap),
        Err(Error::RangeMismatch { .. })
    ));
}

#[test]
fn refused_restore_leaves_the_state_untouched() {
    let mut a = ips("10.97.0.0/16");
    a.allocate(ip("10.97.0.5")).unwrap();
    let bad = Snapshot {
        range: "10.96.0.0/16".into(),
        data: vec![1],
    };
    assert!(a.restore(&bad).is_err());
    let corrupt = Snapshot {
        range: "10.97.0.0/16".into(),
        data: vec![0xff; 9000],
    };
    assert!(a.restore(&corrupt).is_err());
    assert_eq!(a.iter().collect::<Vec<_>>(), [ip("10.97.0.5")]);
}

#[test]
fn snapshot_with_unreadable_range_or_data_is_refused() {
    let mut a = ips("10.96.0.0/24");
    let err = a
        .restore(&Snapshot {
            range: "nonsense".into(),
            data: vec![],
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid snapshot of range nonsense: not a CIDR"),
        "{err}"
    );
    // Offset 254 does not exist in a /24 (254 addresses: offsets 0..=253).
    let mut data = vec![0u8; 32];
    data[0] = 0x40;
    let err = a
        .restore(&Snapshot {
            range: "10.96.0.0/24".into(),
            data,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("value #254 is marked allocated"),
        "{err}"
    );
}

#[test]
fn grown_ip_range_keeps_everything() {
    let mut a = ips("10.96.0.0/24");
    for s in ["10.96.0.1", "10.96.0.10", "10.96.0.254"] {
        a.allocate(ip(s)).unwrap();
    }
    let mut grown = ips("10.96.0.0/16");
    assert!(grown.restore(&a.snapshot()).unwrap().is_empty());
    assert_eq!(
        grown.iter().collect::<Vec<_>>(),
        a.iter().collect::<Vec<_>>()
    );
    // The old broadcast address is an ordinary address of the grown range.
    grown.allocate(ip("10.96.0.255")).unwrap();
}

#[test]
fn shrunk_ip_range_keeps_what_fits_and_reports_what_was_dropped() {
    let mut a = ips("10.96.0.0/16");
    for s in [
        "10.96.0.10",
        "10.96.0.254",
        "10.96.0.255",
        "10.96.1.0",
        "10.96.200.7",
    ] {
        a.allocate(ip(s)).unwrap();
    }
    let mut shrunk = ips("10.96.0.0/24");
    let dropped = shrunk.restore(&a.snapshot()).unwrap();
    // 10.96.0.255 is the /24's broadcast address: dropped too.
    assert_eq!(
        dropped,
        [ip("10.96.0.255"), ip("10.96.1.0"), ip("10.96.200.7")]
    );
    assert_eq!(
        shrunk.iter().collect::<Vec<_>>(),
        [ip("10.96.0.10"), ip("10.96.0.254")]
    );
    assert_eq!(shrunk.used(), 2);
}

#[test]
fn shrunk_ipv6_range_reports_what_was_dropped() {
    let mut a = ips("fd00::/108");
    for s in ["fd00::1", "fd00::ffff", "fd00::1:0", "fd00::f:ffff"] {
        a.allocate(ip(s)).unwrap();
    }
    let mut shrunk = ips("fd00::/112");
    let dropped = shrunk.restore(&a.snapshot()).unwrap();
    assert_eq!(dropped, [ip("fd00::1:0"), ip("fd00::f:ffff")]);
    assert_eq!(
        shrunk.iter().collect::<Vec<_>>(),
        [ip("fd00::1"), ip("fd00::ffff")]
    );
}

#[test]
fn port_snapshot_then_restore_gives_the_same_state() {
    let mut a = PortAllocator::new(PortRange::NODE_PORTS);
    for _ in 0..100 {
        a.allocate_next().unwrap();
    }
    a.allocate(30000).unwrap();
    let snap = a.snapshot();
    assert_eq!(snap.range, "30000-32767");
    let mut b = ports("30000-32767");
    assert!(b.restore(&snap).unwrap().is_empty());
    assert_eq!(b.iter().collect::<Vec<_>>(), a.iter().collect::<Vec<_>>());
    assert_eq!(b.snapshot(), snap);
}

#[test]
fn port_snapshot_to_a_range_with_another_first_port_is_refused() {
    let snap = ports("30000-32767").snapshot();
    let err = ports("30001-32767").restore(&snap).unwrap_err();
    assert_eq!(
        err.to_string(),
        "snapshot of range 30000-32767 cannot be restored into range 30001-32767: \
         the first ports differ"
    );
    let err = ports("30000-32767")
        .restore(&Snapshot {
            range: "x".into(),
            data: vec![],
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSnapshot { .. }));
}

#[test]
fn grown_and_shrunk_port_ranges_report_what_was_dropped() {
    let mut a = ports("30000-32767");
    for p in [30000, 30500, 31000, 32767] {
        a.allocate(p).unwrap();
    }
    let mut grown = ports("30000-40000");
    assert!(grown.restore(&a.snapshot()).unwrap().is_empty());
    assert_eq!(
        grown.iter().collect::<Vec<_>>(),
        [30000, 30500, 31000, 32767]
    );

    let mut shrunk = ports("30000-30999");
    assert_eq!(shrunk.restore(&a.snapshot()).unwrap(), [31000, 32767]);
    assert_eq!(shrunk.iter().collect::<Vec<_>>(), [30000, 30500]);
    assert_eq!(shrunk.free(), 998);
}
