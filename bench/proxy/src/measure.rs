//! One benchmark run: for each size, create the Services, then start each proxy in its own node
//! namespace, wait for its first full sync, and apply one-endpoint changes one at a time, reading
//! each proxy's own sync-duration histogram, its memory and CPU time from /proc, and its ruleset size.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use svcnet_bench_common::prom::{self, Sample};
use svcnet_e2e::cluster;
use svcnet_e2e::inventory::StateDir;

use crate::population;
use crate::proc_stats;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    state_dir: PathBuf,
    /// Service counts, ascending (each size adds Services to the last).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,30000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// One-endpoint changes applied per proxy and size.
    #[arg(long, default_value_t = 20)]
    changes: usize,
    /// The svcnet-proxy binary.
    #[arg(long)]
    svcnet_proxy: PathBuf,
    /// The kube-proxy binary (e2e/hyperkube/build.sh with BUILD_PACKAGE).
    #[arg(long)]
    kube_proxy: PathBuf,
    /// Which proxies, in order.
    #[arg(long, value_delimiter = ',', default_value = "kube-proxy,svcnet-proxy")]
    proxies: Vec<String>,
    #[arg(long)]
    out: PathBuf,
}

/// What one proxy did at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProxyRun {
    pub proxy: String,
    pub services: usize,
    pub endpoints_per_service: usize,
    /// From starting the process to its first sync done (includes listing from the apiserver).
    pub start_to_first_sync_ms: f64,
    /// The first (full) sync, from the proxy's own histogram.
    pub first_sync_ms: f64,
    /// Each one-endpoint change: the sync that applied it, from the proxy's own histogram.
    pub change_sync_ms: Vec<f64>,
    /// Each one-endpoint change: from the PATCH returning to the proxy's sync count moving (polled
    /// every 5 ms; includes the proxy's minimum interval between syncs).
    pub change_seen_ms: Vec<f64>,
    /// Changes that were applied by a full sync rather than a partial one.
    pub full_syncs_for_changes: usize,
    pub rss_after_first_sync_mib: f64,
    pub peak_rss_mib: f64,
    pub cpu_to_first_sync_s: f64,
    pub cpu_for_changes_s: f64,
    /// Lines of `nft list table` for the IPv4 table once synced.
    pub ruleset_lines: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub runs: Vec<ProxyRun>,
}

/// How to run and read one proxy.
struct Subject {
    name: &'static str,
    node: &'static str,
    command: Vec<String>,
    metrics: SocketAddr,
    /// Every sync, full or partial.
    all_syncs: &'static str,
    /// The label that picks the IPv4 syncs, where the proxy labels them by family (only IPv4
    /// Services exist here, so the other family's syncs are not counted).
    ipv4: (&'static str, &'static str),
    /// Full syncs only: the metric and the labels that pick them.
    full_syncs: (&'static str, &'static [(&'static str, &'static str)]),
    tables: &'static [&'static str],
}

fn subject(name: &str, args: &Args, kubeconfig: &std::path::Path) -> Result<Subject> {
    let path = |p: &PathBuf| p.display().to_string();
    Ok(match name {
        "kube-proxy" => Subject {
            name: "kube-proxy",
            node: "node-1",
            command: vec![
                path(&args.kube_proxy),
                "--proxy-mode=nftables".into(),
                format!("--kubeconfig={}", kubeconfig.display()),
                "--hostname-override=node-1".into(),
                "--cluster-cidr=10.244.0.0/16".into(),
                "--metrics-bind-address=127.0.0.1:10249".into(),
                "--healthz-bind-address=127.0.0.1:10256".into(),
                // Leave the (partly host-wide) conntrack settings alone.
                "--conntrack-max-per-core=0".into(),
                "--conntrack-tcp-timeout-established=0".into(),
                "--conntrack-tcp-timeout-close-wait=0".into(),
            ],
            metrics: SocketAddr::from(([127, 0, 0, 1], 10249)),
            all_syncs: "kubeproxy_sync_proxy_rules_duration_seconds",
            ipv4: ("ip_family", "IPv4"),
            full_syncs: ("kubeproxy_sync_full_proxy_rules_duration_seconds", &[]),
            tables: &["ip kube-proxy", "ip6 kube-proxy"],
        },
        "svcnet-proxy" => Subject {
            name: "svcnet-proxy",
            node: "node-2",
            command: vec![
                path(&args.svcnet_proxy),
                "--node-name=node-2".into(),
                "--cluster-cidr=10.244.0.0/16".into(),
                "--service-cidr=10.96.0.0/16".into(),
                "--ipv4-only".into(),
                "--http-addr=127.0.0.1:10256".into(),
            ],
            metrics: SocketAddr::from(([127, 0, 0, 1], 10256)),
            all_syncs: "svcnet_proxy_sync_duration_seconds",
            ipv4: ("family", "ip"),
            full_syncs: ("svcnet_proxy_sync_duration_seconds", &[("kind", "full")]),
            tables: &["ip svcnet", "ip6 svcnet"],
        },
        other => bail!("unknown proxy {other} (kube-proxy, svcnet-proxy)"),
    })
}

/// A scrape's sync figures: (count, sum) of all syncs and of full syncs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Syncs {
    count: f64,
    sum: f64,
    full_count: f64,
}

impl Syncs {
    fn of(samples: &[Sample], subject: &Subject) -> Self {
        let count = format!("{}_count", subject.all_syncs);
        // Unlabelled (one family only): every sample counts.
        let labelled = samples
            .iter()
            .any(|s| s.name == count && s.label(subject.ipv4.0).is_some());
        let ipv4: &[(&str, &str)] = if labelled {
            std::slice::from_ref(&subject.ipv4)
        } else {
            &[]
        };
        let (full, matching) = subject.full_syncs;
        let mut full_matching = matching.to_vec();
        if labelled {
            full_matching.push(subject.ipv4);
        }
        Syncs {
            count: prom::sum(samples, &count, ipv4),
            sum: prom::sum(samples, &format!("{}_sum", subject.all_syncs), ipv4),
            full_count: prom::sum(samples, &format!("{full}_count"), &full_matching),
        }
    }
}

pub async fn run(args: Args) -> Result<()> {
    let state = StateDir::new(&args.state_dir);
    let client = svcnet_e2e::kit::client::from_kubeconfig(&state.kubeconfig()).await?;
    let ticks = proc_stats::ticks_per_second()?;
    let mut results = Results::default();
    let mut have = 0;
    let mut fresh = 1_000_000;
    for &size in &args.sizes {
        let started = Instant::now();
        population::create(&client, have, size.max(have), args.endpoints).await?;
        have = have.max(size);
        eprintln!("{size} Services ready in {:.0?}", started.elapsed());
        for name in &args.proxies {
            let subject = subject(name, &args, &state.kubeconfig())?;
            let run =
                measure_one(&state, &client, &subject, &args, size, ticks, &mut fresh).await?;
            eprintln!(
                "{size} Services, {}: first sync {:.0} ms, change syncs {:?} ms, peak RSS {:.0} MiB",
                run.proxy, run.first_sync_ms, run.change_sync_ms, run.peak_rss_mib
            );
            results.runs.push(run);
            std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)?;
        }
    }
    Ok(())
}

async fn measure_one(
    state: &StateDir,
    client: &kube::Client,
    subject: &Subject,
    args: &Args,
    size: usize,
    ticks: f64,
    fresh: &mut usize,
) -> Result<ProxyRun> {
    let netns = node_netns(state, subject.node)?;
    // Each start is a first sync into an empty namespace.
    for table in subject.tables {
        // Absent is fine.
        let _ = nft_table(&netns, "delete", table);
    }
    let addon = format!("bench-{}-{size}", subject.name);
    let started = Instant::now();
    cluster::start_addon(state, &addon, Some(subject.node), &subject.command)?;
    let result = drive(
        state, client, subject, args, size, ticks, fresh, &netns, &addon, started,
    )
    .await;
    cluster::stop_addon(state, &addon)?;
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    state: &StateDir,
    client: &kube::Client,
    subject: &Subject,
    args: &Args,
    size: usize,
    ticks: f64,
    fresh: &mut usize,
    netns: &str,
    addon: &str,
    started: Instant,
) -> Result<ProxyRun> {
    let pid = addon_pid(state, addon)?;
    let first = wait_for_sync(
        netns,
        subject,
        Syncs::default(),
        started,
        Duration::from_secs(600),
    )
    .await
    .with_context(|| {
        format!(
            "{}'s first sync (log: {})",
            subject.name,
            state.logs().display()
        )
    })?;
    let start_to_first_sync_ms = started.elapsed().as_secs_f64() * 1e3;
    let (rss, _) = proc_stats::memory_mib(pid)?;
    let cpu_first = proc_stats::cpu_seconds(pid, ticks)?;
    let mut run = ProxyRun {
        proxy: subject.name.to_owned(),
        services: size,
        endpoints_per_service: args.endpoints,
        start_to_first_sync_ms,
        first_sync_ms: first.sum / first.count.max(1.0) * 1e3,
        rss_after_first_sync_mib: rss,
        cpu_to_first_sync_s: cpu_first,
        ruleset_lines: ruleset_lines(netns, subject.tables[0]),
        ..ProxyRun::default()
    };
    let mut before = first;
    for change in 0..args.changes {
        // Spread the changes over the Services, the same ones for both proxies.
        let service = (change * 7919) % size;
        *fresh += 1;
        population::change_one(client, service, args.endpoints, *fresh).await?;
        let patched = Instant::now();
        let after = wait_for_sync(netns, subject, before, patched, Duration::from_secs(120))
            .await
            .with_context(|| format!("{} applying change {change}", subject.name))?;
        run.change_seen_ms
            .push(patched.elapsed().as_secs_f64() * 1e3);
        let syncs = after.count - before.count;
        run.change_sync_ms
            .push((after.sum - before.sum) / syncs * 1e3);
        if after.full_count > before.full_count {
            run.full_syncs_for_changes += 1;
        }
        before = after;
    }
    run.cpu_for_changes_s = proc_stats::cpu_seconds(pid, ticks)? - cpu_first;
    run.peak_rss_mib = proc_stats::memory_mib(pid)?.1;
    Ok(run)
}

/// Polls the proxy's metrics until its sync count passes `before`'s.
async fn wait_for_sync(
    netns: &str,
    subject: &Subject,
    before: Syncs,
    since: Instant,
    timeout: Duration,
) -> Result<Syncs> {
    loop {
        // Not answering yet (starting) counts as no sync yet.
        if let Ok(samples) = scrape(netns, subject.metrics).await {
            let now = Syncs::of(&samples, subject);
            if now.count > before.count {
                return Ok(now);
            }
        }
        if since.elapsed() > timeout {
            bail!("no sync within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn scrape(netns: &str, addr: SocketAddr) -> Result<Vec<Sample>> {
    let text = svcnet_e2e::netns::within_async(netns, move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        let mut body = String::new();
        stream.read_to_string(&mut body)?;
        Ok(body)
    })
    .await?;
    Ok(prom::parse(&text))
}

fn node_netns(state: &StateDir, node: &str) -> Result<String> {
    let inventory = state.load()?.context("no cluster is up")?;
    inventory
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.netns.clone())
        .with_context(|| format!("the cluster has no {node}: bring it up with --nodes 2"))
}

fn addon_pid(state: &StateDir, addon: &str) -> Result<i32> {
    let inventory = state.load()?.context("no cluster is up")?;
    inventory
        .processes
        .iter()
        .find(|p| p.name == addon)
        .map(|p| p.pid)
        .with_context(|| format!("no process {addon}"))
}

fn ruleset_lines(netns: &str, table: &str) -> usize {
    nft_table(netns, "list", table)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// `nft <verb> table <family> <name>` in the namespace (`table` is "family name").
fn nft_table(netns: &str, verb: &str, table: &str) -> svcnet_e2e::Result<String> {
    let mut words: Vec<&str> = vec!["nft", verb, "table"];
    words.extend(table.split(' '));
    svcnet_e2e::netns::exec(netns, &words)
}
