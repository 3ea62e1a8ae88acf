//! Stable names for per-service chains and sets.
//!
//! Like kube-proxy: `<prefix><HASH>-<readable>` where HASH is 8 base32 characters of a hash of
//! the readable part. The hash keeps names unique if the readable part has to be truncated and
//! makes near-identical endpoint chains easy to tell apart. The readable part uses `/` between
//! its pieces: nft names allow `[A-Za-z0-9_./-]`, Kubernetes names only `[a-z0-9-]`.

use std::net::IpAddr;

use crate::model::ServiceKey;

/// The longest name nft accepts for a chain or set (the kernel's 256 bytes, less the NUL).
pub const NAME_MAX: usize = 255;

pub const SERVICE_PREFIX: &str = "service-";
pub const LOCAL_PREFIX: &str = "local-";
pub const EXTERNAL_PREFIX: &str = "external-";
pub const FIREWALL_PREFIX: &str = "firewall-";
pub const ENDPOINT_PREFIX: &str = "endpoint-";
pub const AFFINITY_PREFIX: &str = "affinity-";

/// 64-bit FNV-1a: tiny, stable across releases and platforms, good enough to spread names.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The first 8 characters of the RFC 4648 base32 encoding of the big-endian hash.
pub fn short_hash(text: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = fnv1a64(text.as_bytes());
    // 8 characters of 5 bits: the top 40 bits of the hash.
    (0..8)
        .map(|i| {
            let index = (hash >> (64 - 5 * (i + 1))) & 0x1f;
            char::from(ALPHABET[index as usize])
        })
        .collect()
}

/// `<prefix><HASH>-<readable>`, cut to [`NAME_MAX`] with a `...` marker.
pub fn hashed_name(prefix: &str, readable: &str) -> String {
    let mut name = format!("{prefix}{}-{readable}", short_hash(readable));
    if name.len() > NAME_MAX {
        // The readable part is ASCII (Kubernetes names, addresses, digits), so any index is a
        // character boundary.
        name.truncate(NAME_MAX - 3);
        name.push_str("...");
    }
    name
}

/// `ns/svc/proto/port`, the readable part of a service port's chain names.
pub fn service_base(key: &ServiceKey) -> String {
    format!(
        "{}/{}/{}/{}",
        key.namespace,
        key.name,
        key.protocol.as_str(),
        key.port_name
    )
}

/// `ns/svc/proto/port__ip/port`, the readable part of an endpoint's chain and affinity set.
/// IPv6 colons (not allowed in names) become dots, as in kube-proxy.
pub fn endpoint_base(key: &ServiceKey, ip: &IpAddr, port: u16) -> String {
    let ip = ip.to_string().replace(':', ".");
    format!("{}__{ip}/{port}", service_base(key))
}

/// The chain and set names of one service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNames {
    /// Load-balances over the endpoints used with policy Cluster.
    pub cluster: String,
    /// Load-balances over this node's endpoints (policy Local).
    pub local: String,
    /// Entry point of NodePort, externalIP and load-balancer traffic.
    pub external: String,
    /// loadBalancerSourceRanges check.
    pub firewall: String,
}

impl ServiceNames {
    pub fn new(key: &ServiceKey) -> Self {
        let base = service_base(key);
        ServiceNames {
            cluster: hashed_name(SERVICE_PREFIX, &base),
            local: hashed_name(LOCAL_PREFIX, &base),
            external: hashed_name(EXTERNAL_PREFIX, &base),
            firewall: hashed_name(FIREWALL_PREFIX, &base),
        }
    }
}

/// The chain and affinity set of one endpoint of a service port.
pub fn endpoint_names(key: &ServiceKey, ip: &IpAddr, port: u16) -> (String, String) {
    let base = endpoint_base(key, ip, port);
    (
        hashed_name(ENDPOINT_PREFIX, &base),
        hashed_name(AFFINITY_PREFIX, &base),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_carry_a_hash_and_the_readable_service_port() {
        let key = ServiceKey::new("default", "web", "http", Protocol::Tcp);
        let names = ServiceNames::new(&key);
        let hash = short_hash("default/web/tcp/http");
        assert_eq!(
            names.cluster,
            format!("service-{hash}-default/web/tcp/http")
        );
        assert_eq!(hash.len(), 8);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
    }

    #[test]
    fn ipv6_endpoint_names_have_no_colons() {
        let key = ServiceKey::new("ns", "svc", "", Protocol::Udp);
        let ip: IpAddr = "fd00:10:244::5".parse().unwrap_or(IpAddr::from([0u8; 16]));
        let (chain, set) = endpoint_names(&key, &ip, 53);
        assert!(
            chain.ends_with("-ns/svc/udp/__fd00.10.244..5/53"),
            "{chain}"
        );
        assert!(set.starts_with("affinity-"));
        assert!(!chain.contains(':'));
    }

    #[test]
    fn overlong_names_are_cut_to_the_nft_limit_and_stay_distinct() {
        let long = "n".repeat(63);
        let a = ServiceKey::new(&long, &long, &long, Protocol::Sctp);
        let b = ServiceKey::new(
            &long,
            &long,
            &format!("{}m", "n".repeat(62)),
            Protocol::Sctp,
        );
        let ip: IpAddr = "fd00:1111:2222:3333:4444:5555:6666:7777"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 16]));
        let (ea, _) = endpoint_names(&a, &ip, 65535);
        let (eb, _) = endpoint_names(&b, &ip, 65535);
        assert_eq!(ea.len(), NAME_MAX);
        assert!(ea.ends_with("..."));
        assert_ne!(ea, eb);
    }
}
