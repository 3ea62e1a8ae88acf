//! svcnet's configuration resource (`SvcnetConfig` `default`, `spec.proxy`) on top of the flags:
//! when the resource exists its settings apply, except empty lists, which leave the flags' values.

use ipnet::IpNet;
use svcnet_crds::config::{LoadBalancing as ConfiguredBalancing, ProxySettings};

use crate::Error;
use crate::model::{LoadBalancing, ProxyConfig};

fn cidrs(field: &'static str, values: &[String]) -> Result<Vec<IpNet>, Error> {
    values
        .iter()
        .map(|v| {
            v.trim().parse().map_err(|_| Error::NotACidr {
                field,
                value: v.clone(),
            })
        })
        .collect()
}

/// The configuration `settings` ask for, on top of `flags`; an invalid one is refused whole, so a
/// bad edit never half-applies.
pub fn with_settings(flags: &ProxyConfig, settings: &ProxySettings) -> Result<ProxyConfig, Error> {
    let mut config = flags.clone();
    let node_port_addresses = cidrs("nodePortAddresses", &settings.node_port_addresses)?;
    if !node_port_addresses.is_empty() {
        config.node_port_addresses = node_port_addresses;
    }
    let cluster_cidrs = cidrs("clusterCIDRs", &settings.cluster_cidrs)?;
    if !cluster_cidrs.is_empty() {
        config.cluster_cidrs = cluster_cidrs;
    }
    config.masquerade_all = settings.masquerade_all;
    config.default_load_balancing = match settings.load_balancing {
        ConfiguredBalancing::Random => LoadBalancing::Random,
        ConfiguredBalancing::RoundRobin => LoadBalancing::RoundRobin,
        ConfiguredBalancing::SourceHash => LoadBalancing::SourceHash,
    };
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flags() -> ProxyConfig {
        let mut flags = ProxyConfig::new("node-1", Vec::new());
        flags.cluster_cidrs = vec!["10.244.0.0/16".parse().unwrap()];
        flags.masquerade_all = true;
        flags
    }

    #[test]
    fn settings_apply_and_empty_lists_keep_the_flags() {
        let settings = ProxySettings {
            node_port_addresses: vec!["172.18.0.0/24".to_owned()],
            load_balancing: ConfiguredBalancing::RoundRobin,
            ..ProxySettings::default()
        };
        let config = with_settings(&flags(), &settings).unwrap();
        assert_eq!(
            config.node_port_addresses,
            vec!["172.18.0.0/24".parse::<IpNet>().unwrap()]
        );
        assert_eq!(config.cluster_cidrs, flags().cluster_cidrs);
        assert!(!config.masquerade_all);
        assert_eq!(config.default_load_balancing, LoadBalancing::RoundRobin);
    }

    #[test]
    fn a_bad_value_is_refused_with_its_field() {
        let settings = ProxySettings {
            cluster_cidrs: vec!["10.244.0.0/16".to_owned(), "pods".to_owned()],
            ..ProxySettings::default()
        };
        let err = with_settings(&flags(), &settings).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SvcnetConfig proxy.clusterCIDRs: \"pods\" is not a CIDR"
        );
        let loopback = ProxySettings {
            node_port_addresses: vec!["127.0.0.0/8".to_owned()],
            ..ProxySettings::default()
        };
        assert!(with_settings(&flags(), &loopback).is_err());
    }
}
