//! One controller's run: a canary to know it is up, the 0-pod baseline, the setup (Services and
//! Deployments, until every Service's slices show all its endpoints ready), then the churn (readiness
//! flips and scaling in paced rounds), reading writes, CPU and memory at each phase boundary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use svcnet_e2e::agent::pods::HEALTHY_ANNOTATION;
use svcnet_e2e::inventory::StateDir;

use crate::probe::{self, Histogram, ProcSample, Writes};
use crate::tracker::{BENCH_LABEL, Kind, Tracker};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The benchmark cluster's state directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// The addon name the controller under test runs as (its pid comes from the inventory).
    #[arg(long)]
    addon: String,
    /// svcnet or upstream (a name for the results).
    #[arg(long)]
    controller: String,
    /// The `endpointslice.kubernetes.io/managed-by` value of its slices.
    #[arg(long)]
    manager: String,
    #[arg(long, default_value_t = 2000)]
    services: usize,
    #[arg(long, default_value_t = 10)]
    pods_per_service: usize,
    /// Services are spread over this many namespaces.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Rounds of readiness flips (each: `per_round` pods not ready, later the same pods ready again).
    #[arg(long, default_value_t = 20)]
    flip_rounds: usize,
    /// Rounds of scaling (each: `per_round` Deployments one up, later the same ones one down).
    #[arg(long, default_value_t = 10)]
    scale_rounds: usize,
    /// Changes made at once in a round (one per Service, different Services).
    #[arg(long, default_value_t = 10)]
    per_round: usize,
    /// Seconds between a quiet cluster after the setup and the churn (see `run`).
    #[arg(long, default_value_t = 120)]
    settle_seconds: u64,
    /// Concurrent creates during setup.
    #[arg(long, default_value_t = 16)]
    create_concurrency: usize,
    #[arg(long, default_value_t = 3600)]
    setup_timeout_seconds: u64,
    /// Where the results (JSON) go.
    #[arg(long)]
    out: PathBuf,
}

/// p50/p99/max of one kind of change, milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyStats {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            let n = samples.len();
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            ms(samples[i])
        };
        if samples.is_empty() {
            return LatencyStats::default();
        }
        LatencyStats {
            count: samples.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: samples.last().copied().map(ms).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Phase {
    pub seconds: f64,
    pub writes: Writes,
    /// How long the apiserver took to answer the slice updates (PUT) of the phase.
    #[serde(default)]
    pub updates: Histogram,
    /// Writes the apiserver served in the phase, every resource and client.
    #[serde(default)]
    pub cluster_writes: u64,
    /// ADDED + MODIFIED + DELETED events of the manager's slices in the benchmark's watch.
    pub slice_events: u64,
    pub cpu_seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub controller: String,
    pub manager: String,
    pub services: usize,
    pub pods: usize,
    pub baseline: ProcSample,
    pub setup: Phase,
    pub after_setup: ProcSample,
    pub churn: Phase,
    pub end: ProcSample,
    pub slices_after_setup: usize,
    pub slices_at_end: usize,
    pub changes: usize,
    pub unmatched: usize,
    pub superseded: usize,
    pub latency_all: LatencyStats,
    pub latency: BTreeMap<String, LatencyStats>,
    pub watch_restarts: u64,
    /// How long the cluster took to be quiet after the slices were (before the churn).
    #[serde(default)]
    pub quiet_wait_seconds: f64,
    /// The settling period after that.
    #[serde(default)]
    pub settle_seconds: u64,
}

fn namespace_of(index: usize, namespaces: usize) -> String {
    format!("bench-es-{}", index % namespaces.max(1))
}

fn service_name(index: usize) -> String {
    format!("s{index}")
}

fn service(name: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { BENCH_LABEL: "1" } },
        "spec": {
            "selector": { "app": name },
            "ports": [ { "name": "http", "port": 80, "targetPort": "http", "protocol": "TCP" } ],
        },
    }))?)
}

fn deployment(name: &str, replicas: usize) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { BENCH_LABEL: "1" } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name, BENCH_LABEL: "1" } },
                "spec": {
                    // Simulated pods are gone 1 s after deletion; no readiness probe: Ready once
                    // the agent reports them.
                    "terminationGracePeriodSeconds": 1,
                    "containers": [ {
                        "name": "server",
                        "image": "svcnet.dev/testserver:local",
                        "ports": [ { "name": "http", "containerPort": 8080, "protocol": "TCP" } ],
                    } ],
                },
            },
        },
    }))?)
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { BENCH_LABEL: "1" } }
    }))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn create_app(client: &kube::Client, ns: &str, name: &str, replicas: usize) -> Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    services
        .create(&PostParams::default(), &service(name)?)
        .await
        .with_context(|| format!("Service {ns}/{name}"))?;
    deployments
        .create(&PostParams::default(), &deployment(name, replicas)?)
        .await
        .with_context(|| format!("Deployment {ns}/{name}"))?;
    Ok(())
}

/// Polls `check` every `every` until it holds; fails after `timeout`.
async fn wait_for(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

pub async fn run(args: Args) -> Result<()> {
    let state = StateDir::new(&args.state_dir);
    let client = svcnet_e2e::kit::client::from_kubeconfig(&state.kubeconfig()).await?;
    let inventory = state.load()?.context("no cluster in the state directory")?;
    let pid = inventory
        .processes
        .iter()
        .find(|p| p.name == args.addon && p.is_alive())
        .with_context(|| format!("no running addon named {}", args.addon))?
        .pid;
    let alive = || probe::proc_sample(pid).is_ok();
    let tracker = Tracker::start(client.clone(), &args.manager);

    // The canary: one Service with one pod; its ready endpoint says the controller is up and synced.
    let canary_ns = "bench-es-canary";
    create_namespace(&client, canary_ns).await?;
    create_app(&client, canary_ns, "canary", 1).await?;
    let canary = (canary_ns.to_owned(), "canary".to_owned());
    wait_for(
        "the canary's endpoint",
        Duration::from_secs(180),
        Duration::from_millis(100),
        || {
            let ready = tracker.lock().ready_per_service().get(&canary).copied();
            ready == Some(1) || !alive()
        },
    )
    .await?;
    let baseline = probe::proc_sample(pid)?;
    let api0 = probe::read_apiserver(&client).await?;
    let events0 = tracker.lock().slice_events;
    eprintln!(
        "[{}] controller up (pid {pid}): baseline RSS {} KiB",
        args.controller, baseline.rss_kib
    );

    // Setup.
    let started = Instant::now();
    for i in 0..args.namespaces.min(args.services) {
        create_namespace(&client, &namespace_of(i, args.namespaces)).await?;
    }
    let total_pods = args.services * args.pods_per_service;
    futures::stream::iter(0..args.services)
        .map(|i| {
            let client = client.clone();
            let ns = namespace_of(i, args.namespaces);
            async move { create_app(&client, &ns, &service_name(i), args.pods_per_service).await }
        })
        .buffer_unordered(args.create_concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    eprintln!(
        "[{}] created {} Services and Deployments in {:.1?}",
        args.controller,
        args.services,
        started.elapsed()
    );
    let mut last_report = Instant::now();
    let want = args.pods_per_service;
    wait_for(
        "every Service's endpoints to be ready",
        Duration::from_secs(args.setup_timeout_seconds),
        Duration::from_millis(250),
        || {
            let s = tracker.lock();
            let ready = s.ready_per_service();
            let done = ready
                .iter()
                .filter(|((ns, _), n)| ns != canary_ns && **n == want)
                .count();
            if last_report.elapsed() >= Duration::from_secs(15) {
                last_report = Instant::now();
                let pods_ready = s.pods.values().filter(|p| p.ready).count();
                let endpoints: usize = ready.values().sum();
                eprintln!(
                    "[{}] {:>5.0?}: pods seen {} ready {}; ready endpoints {endpoints}/{total_pods}; services complete {done}/{}",
                    args.controller,
                    started.elapsed(),
                    s.pods.len(),
                    pods_ready,
                    args.services
                );
            }
            done >= args.services || !alive()
        },
    )
    .await?;
    let all_ready = started.elapsed();
    if !alive() {
        bail!("the controller (pid {pid}) exited; see its log");
    }
    // Trailing writes belong to the setup: wait until the slices have been quiet for 5 s.
    let mut quiet_since = (Instant::now(), tracker.lock().slice_events);
    wait_for(
        "the slices to be quiet for 5 s",
        Duration::from_secs(300),
        Duration::from_millis(200),
        || {
            let events = tracker.lock().slice_events;
            if events != quiet_since.1 {
                quiet_since = (Instant::now(), events);
            }
            quiet_since.0.elapsed() >= Duration::from_secs(5)
        },
    )
    .await?;
    // The rest of the cluster (Deployment and ReplicaSet status, the node agents) may still be
    // catching up, the longer the faster the controller under test was: the churn starts on a
    // quiet cluster in both runs.
    let quiet_wait = Instant::now();
    wait_for_quiet_cluster(&client).await?;
    let quiet_wait_seconds = quiet_wait.elapsed().as_secs_f64();
    eprintln!(
        "[{}] cluster quiet {quiet_wait_seconds:.1} s after the slices; settling for {} s",
        args.controller, args.settle_seconds
    );
    // Right after the setup the apiserver's heap still holds much of it (its Go GC trace: about
    // 900 MB live against 680 MB a minute or two later), so its collections run longer and slow the
    // requests of a churn started at once, which penalised whichever controller finished the setup
    // first. A fixed settling period puts both runs' churn on the same footing.
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let after_setup = probe::proc_sample(pid)?;
    let api1 = probe::read_apiserver(&client).await?;
    let events1 = tracker.lock().slice_events;
    let slices_after_setup = tracker.lock().slice_count();
    let setup = Phase {
        seconds: all_ready.as_secs_f64(),
        writes: api1.writes.since(api0.writes),
        updates: api1.updates.since(&api0.updates),
        cluster_writes: api1.all_writes.saturating_sub(api0.all_writes),
        slice_events: events1 - events0,
        cpu_seconds: after_setup.cpu_seconds - baseline.cpu_seconds,
    };
    eprintln!(
        "[{}] setup: all {total_pods} endpoints ready after {all_ready:.1?}; {} slice writes; peak RSS {} KiB",
        args.controller, setup.writes.total, after_setup.hwm_kib
    );

    // Churn.
    let churn_started = Instant::now();
    let mut unmatched = 0;
    tracker.lock().measuring = true;
    let stride = (args.services
        / (args.flip_rounds * args.per_round + args.scale_rounds * args.per_round).max(1))
    .max(1);
    let mut sample = (0..args.services).step_by(stride);
    let mut flipped: Vec<Vec<(String, String)>> = Vec::new();
    for round in 0..args.flip_rounds {
        let mut pods = Vec::new();
        for i in sample.by_ref().take(args.per_round) {
            let ns = namespace_of(i, args.namespaces);
            let first = tracker
                .lock()
                .ready_pods_of(&ns, &service_name(i))
                .into_iter()
                .next();
            if let Some(pod) = first {
                pods.push((ns, pod));
            }
        }
        unmatched += churn_round(&client, &tracker, &pods, "false", round).await?;
        flipped.push(pods);
    }
    for (round, pods) in flipped.iter().enumerate() {
        unmatched += churn_round(&client, &tracker, pods, "true", round).await?;
    }
    let scaled: Vec<Vec<usize>> = (0..args.scale_rounds)
        .map(|_| sample.by_ref().take(args.per_round).collect())
        .collect();
    for replicas in [args.pods_per_service + 1, args.pods_per_service] {
        let per_change = if replicas > args.pods_per_service {
            1
        } else {
            2
        };
        for services in &scaled {
            unmatched +=
                scale_round(&client, &tracker, services, &args, replicas, per_change).await?;
        }
    }
    let end = probe::proc_sample(pid)?;
    let api2 = probe::read_apiserver(&client).await?;
    let s = tracker.lock();
    let churn = Phase {
        seconds: churn_started.elapsed().as_secs_f64(),
        writes: api2.writes.since(api1.writes),
        updates: api2.updates.since(&api1.updates),
        cluster_writes: api2.all_writes.saturating_sub(api1.all_writes),
        slice_events: s.slice_events - events1,
        cpu_seconds: end.cpu_seconds - after_setup.cpu_seconds,
    };
    let mut latency = BTreeMap::new();
    for kind in Kind::ALL {
        let samples: Vec<Duration> = s
            .trace
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.latency)
            .collect();
        latency.insert(format!("{kind:?}"), LatencyStats::of(samples));
    }
    let results = Results {
        controller: args.controller.clone(),
        manager: args.manager.clone(),
        services: args.services,
        pods: total_pods,
        baseline,
        setup,
        after_setup,
        churn,
        end,
        slices_after_setup,
        slices_at_end: s.slice_count(),
        changes: s.changes_seen,
        unmatched,
        superseded: s.superseded,
        latency_all: LatencyStats::of(s.trace.iter().map(|t| t.latency).collect()),
        latency,
        watch_restarts: s.pod_watch_restarts + s.slice_watch_restarts,
        quiet_wait_seconds,
        settle_seconds: args.settle_seconds,
    };
    // Each change with the wall-clock time the benchmark saw it, to line up with the logs.
    let mut trace = String::from("seen_unix_ms\tkind\tpod\tlatency_ms\n");
    for t in &s.trace {
        let at = t
            .seen
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        trace.push_str(&format!(
            "{:.3}\t{:?}\t{}/{}\t{:.3}\n",
            at.as_secs_f64() * 1000.0,
            t.kind,
            t.pod.0,
            t.pod.1,
            t.latency.as_secs_f64() * 1000.0
        ));
    }
    drop(s);
    std::fs::write(args.out.with_extension("trace.tsv"), trace)?;
    std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)?;
    eprintln!(
        "[{}] churn: {} changes, p50 {:.1} ms, p99 {:.1} ms, {} slice writes; results in {}",
        args.controller,
        results.changes,
        results.latency_all.p50_ms,
        results.latency_all.p99_ms,
        results.churn.writes.total,
        args.out.display()
    );
    Ok(())
}

/// Writes per second of a quiet cluster: leases (three nodes every 10 s, the controller manager and
/// the scheduler every 2 s) and the odd Event.
pub const QUIET_WRITES_PER_SECOND: u64 = 5;

/// Waits until the apiserver has served at most [`QUIET_WRITES_PER_SECOND`] writes a second for
/// 5 s in a row.
async fn wait_for_quiet_cluster(client: &kube::Client) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = probe::read_apiserver(client).await?.all_writes;
    let mut quiet_seconds = 0;
    while quiet_seconds < 5 {
        if Instant::now() >= deadline {
            bail!("the cluster was not quiet within 10 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = probe::read_apiserver(client).await?.all_writes;
        if now.saturating_sub(last) <= QUIET_WRITES_PER_SECOND {
            quiet_seconds += 1;
        } else {
            quiet_seconds = 0;
        }
        last = now;
    }
    Ok(())
}

/// Waits until `expected` more pod changes were seen and every one of them shows in the slices;
/// returns how many did not within a minute (they are dropped).
async fn settle_round(tracker: &Tracker, seen_before: usize, expected: usize, what: &str) -> usize {
    let done = wait_for(
        what,
        Duration::from_secs(60),
        Duration::from_millis(10),
        || {
            let s = tracker.lock();
            s.changes_seen >= seen_before + expected && s.pending_count() == 0
        },
    )
    .await;
    if let Err(e) = done {
        let mut s = tracker.lock();
        let left = s.abandon_pending();
        let missing = (seen_before + expected).saturating_sub(s.changes_seen);
        eprintln!("{e}: {left} changes not shown, {missing} pod changes never seen");
        return left + missing;
    }
    0
}

/// Sets the health annotation of `pods` at once, then waits until the slices show every change.
async fn churn_round(
    client: &kube::Client,
    tracker: &Tracker,
    pods: &[(String, String)],
    healthy: &str,
    round: usize,
) -> Result<usize> {
    let seen_before = tracker.lock().changes_seen;
    let patch = json!({ "metadata": { "annotations": { HEALTHY_ANNOTATION: healthy } } });
    futures::future::try_join_all(pods.iter().map(|(ns, name)| {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let patch = patch.clone();
        async move {
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
        }
    }))
    .await?;
    let what = format!("round {round} of healthy={healthy} to show in the slices");
    Ok(settle_round(tracker, seen_before, pods.len(), &what).await)
}

/// Scales the Deployments of `services` to `replicas` at once, then waits until the slices show
/// `per_change` changes per Deployment.
async fn scale_round(
    client: &kube::Client,
    tracker: &Tracker,
    services: &[usize],
    args: &Args,
    replicas: usize,
    per_change: usize,
) -> Result<usize> {
    let seen_before = tracker.lock().changes_seen;
    let patch = json!({ "spec": { "replicas": replicas } });
    futures::future::try_join_all(services.iter().map(|i| {
        let api: Api<Deployment> =
            Api::namespaced(client.clone(), &namespace_of(*i, args.namespaces));
        let patch = patch.clone();
        async move {
            api.patch(
                &service_name(*i),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        }
    }))
    .await?;
    let what = format!("scaling to {replicas} to show in the slices");
    Ok(settle_round(tracker, seen_before, services.len() * per_change, &what).await)
}
