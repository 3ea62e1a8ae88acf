//! Which ranges to allocate from: svcnet's configuration, else the flags, else the apiserver's own
//! ServiceCIDRs.

use ipnet::IpNet;
use svcnet_allocator::PortRange;
use svcnet_crds::SvcnetConfigSpec;

use super::Family;
use super::book::Ranges;
use crate::Error;

/// The ranges to use. `service_cidrs` are the apiserver's, primary first.
pub fn desired(
    config: Option<&SvcnetConfigSpec>,
    flag_cidrs: &[IpNet],
    flag_ports: PortRange,
    service_cidrs: &[IpNet],
) -> Result<Ranges, Error> {
    let configured: Vec<IpNet> = match config {
        Some(spec) if !spec.service_ip_ranges.is_empty() => spec
            .service_ip_ranges
            .iter()
            .map(|r| {
                r.parse::<IpNet>()
                    .map_err(|e| Error::InvalidConfig(format!("serviceIPRanges: {r:?}: {e}")))
            })
            .collect::<Result<_, _>>()?,
        _ if !flag_cidrs.is_empty() => flag_cidrs.to_vec(),
        _ => service_cidrs.to_vec(),
    };
    // One range per family, the first of each.
    let mut ips: Vec<IpNet> = Vec::new();
    for net in configured {
        let net = net.trunc();
        if !ips
            .iter()
            .any(|n| Family::of(n.network()) == Family::of(net.network()))
        {
            ips.push(net);
        }
    }
    let ports = match config {
        Some(spec) => PortRange::new(spec.node_port_range.first, spec.node_port_range.last)?,
        None => flag_ports,
    };
    Ok(Ranges { ips, ports })
}

/// The ranges that are not inside any of the apiserver's ServiceCIDRs: the apiserver would refuse
/// the addresses we hand out from them.
pub fn outside(ranges: &Ranges, service_cidrs: &[IpNet]) -> Vec<IpNet> {
    ranges
        .ips
        .iter()
        .filter(|r| !service_cidrs.iter().any(|s| s.contains(*r)))
        .copied()
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn configuration_then_flags_then_the_apiservers_ranges() {
        let ports = PortRange::new(30000, 32767).unwrap();
        let apiserver = nets(&["10.96.0.0/16", "fd00:10:96::/108"]);
        let from_apiserver = desired(None, &[], ports, &apiserver).unwrap();
        assert_eq!(from_apiserver.ips, apiserver);
        let from_flags = desired(None, &nets(&["10.96.128.0/17"]), ports, &apiserver).unwrap();
        assert_eq!(from_flags.ips, nets(&["10.96.128.0/17"]));
        let spec = SvcnetConfigSpec {
            service_ip_ranges: vec!["fd00:10:96::/112".into(), "10.96.0.0/20".into()],
            ..SvcnetConfigSpec::default()
        };
        let from_config =
            desired(Some(&spec), &nets(&["10.96.128.0/17"]), ports, &apiserver).unwrap();
        assert_eq!(from_config.ips, nets(&["fd00:10:96::/112", "10.96.0.0/20"]));
        assert_eq!(from_config.families(), vec![Family::V6, Family::V4]);
        assert!(outside(&from_config, &apiserver).is_empty());
        assert_eq!(
            outside(&from_flags, &nets(&["10.0.0.0/16"])),
            nets(&["10.96.128.0/17"])
        );
    }
}
