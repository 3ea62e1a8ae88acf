//! Pod addresses from the node's pod CIDR: offset 1 is the gateway, so pods get 2 and up; a dual-stack
//! pod gets the same offset in the node's IPv6 /64. The lowest free offset is remembered, so
//! handing out addresses stays cheap with thousands of pods on a simulated node's /16.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

#[derive(Debug, Clone)]
pub struct PodIpam {
    v4: Ipv4Net,
    v6: Option<Ipv6Net>,
    used: BTreeSet<u32>,
    /// Every offset in 2..next is used (next may be used too, after a `reserve`).
    next: u32,
}

impl PodIpam {
    pub fn new(v4: Ipv4Net, v6: Option<Ipv6Net>) -> Self {
        PodIpam {
            v4,
            v6,
            used: BTreeSet::new(),
            next: 2,
        }
    }

    fn last_offset(&self) -> u32 {
        // The broadcast address is not handed out.
        (1u32 << (32 - u32::from(self.v4.prefix_len()))).saturating_sub(2)
    }

    fn addresses(&self, offset: u32) -> Vec<IpAddr> {
        let mut ips = vec![IpAddr::V4(Ipv4Addr::from(
            u32::from(self.v4.network()) + offset,
        ))];
        if let Some(v6) = self.v6 {
            ips.push(IpAddr::V6(Ipv6Addr::from(
                u128::from(v6.network()) + u128::from(offset),
            )));
        }
        ips
    }

    /// The lowest free offset's addresses (IPv4 first), or None when the CIDR is full.
    pub fn allocate(&mut self) -> Option<Vec<IpAddr>> {
        // Walk the used offsets from `next` on: the first gap is the lowest free offset.
        let mut offset = self.next;
        for used in self.used.range(self.next..) {
            if *used != offset {
                break;
            }
            offset += 1;
        }
        if offset > self.last_offset() {
            self.next = offset;
            return None;
        }
        self.used.insert(offset);
        self.next = offset + 1;
        Some(self.addresses(offset))
    }

    fn offset_of(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(v4) if self.v4.contains(&v4) => {
                Some(u32::from(v4) - u32::from(self.v4.network()))
            }
            _ => None,
        }
    }

    /// Marks a pod's existing IPv4 address as used (after a restart); returns its full address set.
    pub fn reserve(&mut self, ip: IpAddr) -> Option<Vec<IpAddr>> {
        let offset = self.offset_of(ip)?;
        (2..=self.last_offset()).contains(&offset).then(|| {
            self.used.insert(offset);
            self.addresses(offset)
        })
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(offset) = self.offset_of(ip)
            && self.used.remove(&offset)
        {
            self.next = self.next.min(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(dual: bool) -> PodIpam {
        PodIpam::new(
            "10.244.1.0/24".parse().unwrap_or_default(),
            dual.then(|| "fd00:10:244:1::/64".parse().unwrap_or_default()),
        )
    }

    #[test]
    fn hands_out_from_offset_two_and_reuses_released() {
        let mut ipam = ipam(true);
        let a = ipam.allocate().unwrap_or_default();
        assert_eq!(
            a,
            vec![
                "10.244.1.2"
                    .parse::<IpAddr>()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                "fd00:10:244:1::2"
                    .parse::<IpAddr>()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ]
        );
        let b = ipam.allocate().unwrap_or_default();
        assert_eq!(b[0].to_string(), "10.244.1.3");
        ipam.release(a[0]);
        assert_eq!(
            ipam.allocate().unwrap_or_default()[0].to_string(),
            "10.244.1.2"
        );
    }

    #[test]
    fn a_full_cidr_gives_none_and_reserve_skips_used() {
        let mut ipam = ipam(false);
        let reserved = ipam.reserve(
            "10.244.1.7"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        );
        assert!(reserved.is_some());
        let mut count = 0;
        while let Some(ips) = ipam.allocate() {
            assert_ne!(ips[0].to_string(), "10.244.1.7");
            count += 1;
        }
        assert_eq!(count, 253 - 1);
        assert!(ipam.allocate().is_none());
        ipam.release(
            "10.244.1.100"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        );
        assert_eq!(
            ipam.allocate().unwrap_or_default()[0].to_string(),
            "10.244.1.100"
        );
        assert!(
            ipam.reserve(
                "10.245.0.1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
            .is_none()
        );
    }

    #[test]
    fn a_slash_16_holds_65533_pods_and_reuses_the_lowest_released() {
        let mut ipam = PodIpam::new("10.129.0.0/16".parse().unwrap_or_default(), None);
        let mut last = None;
        let mut count = 0;
        while let Some(ips) = ipam.allocate() {
            last = Some(ips[0]);
            count += 1;
        }
        assert_eq!(count, 65536 - 3);
        assert_eq!(
            last.map(|ip| ip.to_string()).as_deref(),
            Some("10.129.255.254")
        );
        for ip in ["10.129.200.7", "10.129.3.4"] {
            ipam.release(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        }
        assert_eq!(
            ipam.allocate().unwrap_or_default()[0].to_string(),
            "10.129.3.4"
        );
        assert_eq!(
            ipam.allocate().unwrap_or_default()[0].to_string(),
            "10.129.200.7"
        );
        assert!(ipam.allocate().is_none());
    }
}
