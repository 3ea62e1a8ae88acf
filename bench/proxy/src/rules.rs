//! `rules`: svcnet-proxy's own transactions for the benchmark's Services, with no cluster: the
//! first full sync and a one-endpoint change as `nft -f` text, and how long compiling them took. With
//! them the kernel's part can be timed alone (docs/proxy-ruleset.md, "Scale, measured").

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcnet_proxy::from_kube::desired_state;
use svcnet_proxy::{Family, ProxyConfig, compile, compile_from};

use crate::population;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// The node every endpoint names (`measure`'s slices name none, so each could be a pod of
    /// this node and goes into the hairpin set).
    #[arg(long)]
    endpoint_node: Option<String>,
    /// Where `full.nft` and `change.nft` are written.
    #[arg(long)]
    out: PathBuf,
}

/// ClusterIP of Service `i`: 10.96.0.0/16 from .1.0 on, as an apiserver might hand them out.
fn cluster_ip(i: usize) -> std::net::Ipv4Addr {
    let k = u32::try_from(i + 256).unwrap_or(u32::MAX);
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 96, 0, 0)) + k)
}

pub fn run(args: &Args) -> Result<()> {
    // The flags `measure` gives svcnet-proxy on node-2.
    let mut config = ProxyConfig::new("node-2", vec!["172.18.0.3".parse()?]);
    config.cluster_cidrs = vec!["10.244.0.0/16".parse()?];
    config.service_cidrs = vec!["10.96.0.0/16".parse()?];
    let node = args.endpoint_node.as_deref();
    let services = (0..args.services)
        .map(|i| population::service(i, Some(cluster_ip(i))))
        .collect::<Result<Vec<_>>>()?;
    let mut slices = (0..args.services)
        .map(|i| population::slice(i, args.endpoints, None, node))
        .collect::<Result<Vec<_>>>()?;
    let svc_refs: Vec<_> = services.iter().collect();
    let translate = |slices: &[EndpointSlice]| {
        desired_state(
            &config,
            Family::V4,
            &svc_refs,
            &slices.iter().collect::<Vec<_>>(),
        )
    };

    let started = Instant::now();
    let desired = translate(&slices);
    let (full, committed) = compile(&desired, None);
    let full_text = full.to_string();
    let full_took = started.elapsed();

    // The change `measure` makes first: Service 0's first endpoint gets a fresh address.
    if let Some(first) = slices.first_mut() {
        *first = population::slice(
            0,
            args.endpoints,
            Some(args.services * args.endpoints),
            node,
        )?;
    }
    let started = Instant::now();
    let desired = translate(&slices);
    let translate_took = started.elapsed();
    // As the runner does: the committed state is handed over and updated in place.
    let (change, next) = compile_from(&desired, Some(committed));
    let change_text = change.to_string();
    let change_took = started.elapsed();
    // Dropped outside the timing, as the proxy drops the state it replaces after the sync.
    drop(next);

    std::fs::create_dir_all(&args.out)?;
    for (name, text) in [("full.nft", &full_text), ("change.nft", &change_text)] {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{} Services x {} endpoints: full sync {} lines, compiled in {:?}; one-endpoint change {} lines, compiled in {:?} (of which {:?} translating every Service and slice)",
        args.services,
        args.endpoints,
        full.len(),
        full_took,
        change.len(),
        change_took,
        translate_took
    );
    Ok(())
}
