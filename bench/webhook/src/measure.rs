//! One setup's run on a cluster already up (with its controller replicas, if any, started as
//! addons): wait until the replicas are ready and the webhook configuration trusts them, a warm-up,
//! then N NodePort Services created by C concurrent clients, each create timed; then the replicas'
//! and the apiserver's metrics (the difference over the timed run) and a check of every Service's
//! ClusterIP and NodePort.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use svcnet_e2e::inventory::StateDir;
use svcnet_e2e::kit::addons::http_get;

use svcnet_bench_common::prom::{self, Buckets, Sample};

/// The webhook's name in svcnet's MutatingWebhookConfiguration (as the apiserver labels its metrics).
const WEBHOOK_NAME: &str = "services.svcnet.dev";
/// The controller's histogram of its answers (persistence included).
const WEBHOOK_HISTOGRAM: &str = "svcnet_allocation_webhook_duration_seconds";
const WEBHOOK_REQUESTS: &str = "svcnet_allocation_webhook_requests_total";
/// The apiserver's histogram of its calls to a webhook (network and TLS included).
const APISERVER_WEBHOOK_HISTOGRAM: &str = "apiserver_admission_webhook_admission_duration_seconds";
/// svcnet's allocation state (one object).
const STATE_PATH: &str = "/apis/svcnet.dev/v1alpha1/allocationstates/default";
/// Label put on everything the benchmark creates.
const BENCH_LABEL: &str = "bench.svcnet.dev/webhook";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The benchmark cluster's state directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// none, one or two (a name for the results).
    #[arg(long)]
    setup: String,
    /// A controller replica, as `<addon name>=<HTTP port>` (its /readyz and /metrics on 127.0.0.1);
    /// repeat for each replica, none for the apiserver allocating by itself.
    #[arg(long = "replica", value_parser = parse_replica)]
    replicas: Vec<(String, u16)>,
    /// The MutatingWebhookConfiguration the replicas manage.
    #[arg(long, default_value = "svcnet")]
    webhook_configuration: String,
    /// Services created in the timed run.
    #[arg(long, default_value_t = 2000)]
    services: usize,
    /// Concurrent clients (one connection each).
    #[arg(long, default_value_t = 20)]
    clients: usize,
    /// Creates before the timed run (another namespace).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// The timed run's namespace (created fresh; the warm-up uses `<namespace>-warmup`).
    #[arg(long, default_value = "bench-webhook")]
    namespace: String,
    #[arg(long, default_value_t = 300)]
    ready_timeout_seconds: u64,
    /// After the run, how long to wait for the allocation state's reservations to be settled.
    #[arg(long, default_value_t = 120)]
    settle_seconds: u64,
    /// Where the results (JSON) go.
    #[arg(long)]
    out: PathBuf,
}

fn parse_replica(s: &str) -> Result<(String, u16), String> {
    let (name, port) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: expected <addon name>=<HTTP port>"))?;
    let port = port.parse().map_err(|e| format!("{s}: port: {e}"))?;
    Ok((name.to_owned(), port))
}

/// p50/p99/max/mean, milliseconds (nearest rank).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencyStats {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return LatencyStats::default();
        }
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = samples.len();
        let rank = |p: f64| {
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            ms(samples[i])
        };
        LatencyStats {
            count: n,
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: samples.last().copied().map(ms).unwrap_or_default(),
            mean_ms: samples.iter().copied().map(ms).sum::<f64>() / n as f64,
        }
    }
}

/// A quantile read from histogram buckets: the bucket holding it, milliseconds; `upper_ms` is None
/// when it is past the last finite bucket.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct BucketQuantile {
    pub lower_ms: f64,
    pub upper_ms: Option<f64>,
}

impl BucketQuantile {
    fn of(buckets: &Buckets, q: f64) -> Option<Self> {
        buckets.quantile(q).map(|(lo, hi)| BucketQuantile {
            lower_ms: lo * 1000.0,
            upper_ms: hi.is_finite().then_some(hi * 1000.0),
        })
    }
}

/// A histogram over the timed run: observations and the buckets of p50 and p99.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistogramStats {
    pub count: f64,
    pub p50: Option<BucketQuantile>,
    pub p99: Option<BucketQuantile>,
}

impl HistogramStats {
    fn of(buckets: &Buckets) -> Self {
        HistogramStats {
            count: buckets.count(),
            p50: BucketQuantile::of(buckets, 0.50),
            p99: BucketQuantile::of(buckets, 0.99),
        }
    }
}

/// One replica's webhook answers during the timed run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaStats {
    pub name: String,
    pub outcomes: BTreeMap<String, u64>,
    pub histogram: HistogramStats,
}

/// Every Service on the cluster after the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Check {
    pub services_in_namespace: usize,
    pub services_on_cluster: usize,
    /// Services of the timed run without a ClusterIP / without a NodePort.
    pub without_cluster_ip: usize,
    pub without_node_port: usize,
    /// ClusterIPs / NodePorts held by more than one Service (cluster-wide), counted once each.
    pub duplicate_cluster_ips: usize,
    pub duplicate_node_ports: usize,
    pub distinct_cluster_ips_in_namespace: usize,
    pub distinct_node_ports_in_namespace: usize,
}

/// What the apiserver counted during the timed run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiserverStats {
    /// Its calls to svcnet's webhook (CREATE, admit).
    pub webhook_calls: HistogramStats,
    /// Calls that failed and were let through by `failurePolicy: Ignore`.
    pub webhook_fail_open: f64,
    /// Service creates (POST) by response code.
    pub service_creates: BTreeMap<String, u64>,
    /// Writes of `AllocationState` objects (every verb but reads) and how many were conflicts.
    pub state_writes: u64,
    pub state_conflicts: u64,
    /// `IPAddress` creates (the apiserver's record of each ClusterIP) by response code.
    pub ipaddress_creates: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub setup: String,
    pub services: usize,
    pub clients: usize,
    pub warmup: usize,
    pub wall_seconds: f64,
    pub creates_per_second: f64,
    pub created: usize,
    pub failed: usize,
    /// Failure messages and how often each came (first 120 characters).
    pub failures: BTreeMap<String, usize>,
    pub create_latency: LatencyStats,
    /// All replicas together; None without replicas.
    pub webhook: Option<HistogramStats>,
    pub replicas: Vec<ReplicaStats>,
    pub apiserver: ApiserverStats,
    pub check: Check,
    /// CPU seconds (user + system) used during the timed run, by process.
    pub cpu_seconds: BTreeMap<String, f64>,
    /// MutatingWebhookConfigurations on the cluster during the run.
    pub webhook_configurations: Vec<String>,
    /// The `AllocationState` object just after the run (what every write sends) and once its
    /// reservations are settled (or the wait gave up).
    pub state_after_run: Option<StateSample>,
    pub state_settled: Option<StateSample>,
}

/// The `AllocationState` object at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StateSample {
    /// Seconds after the last create was answered.
    pub at_seconds: f64,
    /// Its size as JSON, bytes.
    pub bytes: usize,
    /// `spec.pendingCount`: values handed out whose Service the Lease holder has not seen yet.
    pub pending: u64,
}

async fn sample_state(client: &kube::Client, since: Instant) -> Result<StateSample> {
    let request = http::Request::get(STATE_PATH).body(Vec::new())?;
    let text = client.request_text(request).await?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    Ok(StateSample {
        at_seconds: since.elapsed().as_secs_f64(),
        bytes: text.len(),
        pending: value
            .pointer("/spec/pendingCount")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
    })
}

fn service(name: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { BENCH_LABEL: "1" } },
        "spec": {
            "type": "NodePort",
            "ports": [ { "name": "http", "port": 80, "protocol": "TCP" } ],
        },
    }))?)
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { BENCH_LABEL: "1" } }
    }))?;
    api.create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("namespace {name} (the benchmark wants a fresh one)"))?;
    Ok(())
}

/// The body of an HTTP GET on 127.0.0.1:`port`, or None unless it answered 200.
fn get_ok(port: u16, path: &str) -> Option<String> {
    let response = http_get(port, path).ok()?;
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    let body = response
        .split_once("\r\n\r\n")
        .map_or(response.as_str(), |(_, b)| b);
    Some(body.to_owned())
}

fn scrape_replica(port: u16) -> Result<Vec<Sample>> {
    let body =
        get_ok(port, "/metrics").with_context(|| format!("GET http://127.0.0.1:{port}/metrics"))?;
    Ok(prom::parse(&body))
}

async fn scrape_apiserver(client: &kube::Client) -> Result<Vec<Sample>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    Ok(prom::parse(&client.request_text(request).await?))
}

/// utime + stime of a process, seconds (`/proc/<pid>/stat`); None when it is gone.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum::<Option<u64>>()?;
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

/// CPU seconds so far of the control plane, the replicas and this process.
fn cpu_snapshot(state: &StateDir, replicas: &[(String, u16)]) -> Result<BTreeMap<String, f64>> {
    let inventory = state.load()?.context("no cluster in the state directory")?;
    let mut wanted: Vec<&str> = vec!["kube-apiserver", "etcd"];
    wanted.extend(replicas.iter().map(|(n, _)| n.as_str()));
    let mut out = BTreeMap::new();
    for process in inventory.processes.iter().filter(|p| p.is_alive()) {
        if wanted.contains(&process.name.as_str())
            && let Some(cpu) = cpu_seconds(&process.pid.to_string())
        {
            out.insert(process.name.clone(), cpu);
        }
    }
    if let Some(cpu) = cpu_seconds("self") {
        out.insert("benchmark".to_owned(), cpu);
    }
    Ok(out)
}

struct Snapshot {
    replicas: Vec<Vec<Sample>>,
    apiserver: Vec<Sample>,
    cpu: BTreeMap<String, f64>,
}

async fn snapshot(
    client: &kube::Client,
    state: &StateDir,
    replicas: &[(String, u16)],
) -> Result<Snapshot> {
    let cpu = cpu_snapshot(state, replicas)?;
    let mut scraped = Vec::new();
    for (_, port) in replicas {
        scraped.push(scrape_replica(*port)?);
    }
    Ok(Snapshot {
        replicas: scraped,
        apiserver: scrape_apiserver(client).await?,
        cpu,
    })
}

/// The outcome of every create: its latency, or the error.
type Outcomes = Vec<Result<Duration, String>>;

/// Creates Services `<prefix>0..<prefix>n-1` in `namespace` from `clients.len()` concurrent
/// workers, each on its own client; returns each create's outcome and the wall time.
async fn create_services(
    clients: &[kube::Client],
    namespace: &str,
    prefix: &str,
    n: usize,
) -> Result<(Outcomes, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    // Build the objects first, so the timed part is only the creates.
    let objects: Arc<Vec<Service>> = Arc::new(
        (0..n)
            .map(|i| service(&format!("{prefix}{i}")))
            .collect::<Result<_>>()?,
    );
    let started = Instant::now();
    let workers = clients.iter().map(|client| {
        let api: Api<Service> = Api::namespaced(client.clone(), namespace);
        let next = next.clone();
        let objects = objects.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let pp = PostParams::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(object) = objects.get(i) else { break };
                let t = Instant::now();
                let outcome = match api.create(&pp, object).await {
                    Ok(_) => Ok(t.elapsed()),
                    Err(e) => Err(e.to_string()),
                };
                outcomes.push(outcome);
            }
            outcomes
        })
    });
    let mut all = Vec::with_capacity(n);
    for worker in futures::future::join_all(workers).await {
        all.extend(worker.context("a create worker panicked")?);
    }
    Ok((all, started.elapsed()))
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncCheck) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check.check().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A condition polled by [`wait_for`].
trait AsyncCheck {
    async fn check(&mut self) -> bool;
}

struct ReplicasReady<'a>(&'a [(String, u16)]);

impl AsyncCheck for ReplicasReady<'_> {
    async fn check(&mut self) -> bool {
        self.0
            .iter()
            .all(|(_, port)| get_ok(*port, "/readyz").is_some())
    }
}

struct CaBundle<'a>(&'a Api<MutatingWebhookConfiguration>, &'a str);

impl AsyncCheck for CaBundle<'_> {
    async fn check(&mut self) -> bool {
        let Ok(Some(config)) = self.0.get_opt(self.1).await else {
            return false;
        };
        let webhooks = config.webhooks.unwrap_or_default();
        !webhooks.is_empty()
            && webhooks.iter().all(|w| {
                w.client_config
                    .ca_bundle
                    .as_ref()
                    .is_some_and(|b| !b.0.is_empty())
            })
    }
}

fn webhook_answers(scrapes: &[Vec<Sample>]) -> f64 {
    scrapes
        .iter()
        .map(|s| prom::sum(s, WEBHOOK_REQUESTS, &[]))
        .sum()
}

pub async fn run(args: Args) -> Result<()> {
    let state = StateDir::new(&args.state_dir);
    let client = svcnet_e2e::kit::client::from_kubeconfig(&state.kubeconfig()).await?;
    let tag = format!("[{}]", args.setup);
    let mwc: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let timeout = Duration::from_secs(args.ready_timeout_seconds);

    if !args.replicas.is_empty() {
        let waited = Instant::now();
        wait_for(
            "every replica's /readyz to answer 200",
            timeout,
            ReplicasReady(&args.replicas),
        )
        .await?;
        wait_for(
            &format!(
                "MutatingWebhookConfiguration {} to have a caBundle",
                args.webhook_configuration
            ),
            timeout,
            CaBundle(&mwc, &args.webhook_configuration),
        )
        .await?;
        eprintln!(
            "{tag} {} replica(s) ready and the webhook configuration trusted after {:.1?}",
            args.replicas.len(),
            waited.elapsed()
        );
    }
    let webhook_configurations: Vec<String> = mwc
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    if args.replicas.is_empty() && !webhook_configurations.is_empty() {
        eprintln!(
            "{tag} warning: MutatingWebhookConfigurations present without a webhook: {webhook_configurations:?}"
        );
    }

    let mut clients = Vec::with_capacity(args.clients.max(1));
    for _ in 0..args.clients.max(1) {
        clients.push(svcnet_e2e::kit::client::from_kubeconfig(&state.kubeconfig()).await?);
    }

    // Warm-up: connections from every client, the apiserver's connections to the webhook, the
    // replicas' first commits. With replicas, go on until the webhook has answered.
    let warm_ns = format!("{}-warmup", args.namespace);
    create_namespace(&client, &warm_ns).await?;
    let (warm, took) = create_services(&clients, &warm_ns, "w", args.warmup).await?;
    let warm_failed = warm.iter().filter(|o| o.is_err()).count();
    eprintln!(
        "{tag} warm-up: {} creates in {took:.1?}, {warm_failed} failed",
        warm.len()
    );
    if !args.replicas.is_empty() {
        let mut extra = 0;
        loop {
            let scrapes = args
                .replicas
                .iter()
                .map(|(_, port)| scrape_replica(*port))
                .collect::<Result<Vec<_>>>()?;
            if webhook_answers(&scrapes) > 0.0 {
                break;
            }
            if extra >= 150 {
                bail!("the webhook has not answered after {extra} extra warm-up creates");
            }
            let one = &clients[..1];
            create_services(one, &warm_ns, &format!("x{extra}-"), 1).await?;
            extra += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if extra > 0 {
            eprintln!("{tag} warm-up: {extra} extra creates until the webhook answered");
        }
    }

    // The timed run.
    create_namespace(&client, &args.namespace).await?;
    let before = snapshot(&client, &state, &args.replicas).await?;
    eprintln!(
        "{tag} creating {} NodePort Services from {} clients",
        args.services,
        clients.len()
    );
    let (outcomes, wall) = create_services(&clients, &args.namespace, "s", args.services).await?;
    let finished = Instant::now();
    let after = snapshot(&client, &state, &args.replicas).await?;

    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            Ok(d) => latencies.push(d),
            Err(e) => *failures.entry(e.chars().take(120).collect()).or_default() += 1,
        }
    }
    let failed: usize = failures.values().sum();
    let created = latencies.len();
    let create_latency = LatencyStats::of(latencies);

    // The replicas' own view, over the timed run.
    let mut replicas = Vec::new();
    let mut sum_before = Buckets::default();
    let mut sum_after = Buckets::default();
    let mut all_before = Vec::new();
    let mut all_after = Vec::new();
    for (((name, _), b), a) in args
        .replicas
        .iter()
        .zip(&before.replicas)
        .zip(&after.replicas)
    {
        let mut outcomes = BTreeMap::new();
        let kinds: BTreeSet<&str> = a
            .iter()
            .filter(|s| s.name == WEBHOOK_REQUESTS)
            .filter_map(|s| s.label("outcome"))
            .collect();
        for kind in kinds {
            let n = prom::sum(a, WEBHOOK_REQUESTS, &[("outcome", kind)])
                - prom::sum(b, WEBHOOK_REQUESTS, &[("outcome", kind)]);
            outcomes.insert(kind.to_owned(), n.max(0.0) as u64);
        }
        let hb = Buckets::of(b, WEBHOOK_HISTOGRAM, &[]);
        let ha = Buckets::of(a, WEBHOOK_HISTOGRAM, &[]);
        replicas.push(ReplicaStats {
            name: name.clone(),
            outcomes,
            histogram: HistogramStats::of(&ha.since(&hb)),
        });
        all_before.extend(b.iter().cloned());
        all_after.extend(a.iter().cloned());
    }
    if !args.replicas.is_empty() {
        sum_before = Buckets::of(&all_before, WEBHOOK_HISTOGRAM, &[]);
        sum_after = Buckets::of(&all_after, WEBHOOK_HISTOGRAM, &[]);
    }
    let webhook =
        (!args.replicas.is_empty()).then(|| HistogramStats::of(&sum_after.since(&sum_before)));

    // The apiserver's view.
    let (ab, aa) = (&before.apiserver, &after.apiserver);
    let ours = [
        ("name", WEBHOOK_NAME),
        ("operation", "CREATE"),
        ("type", "admit"),
    ];
    let calls = Buckets::of(aa, APISERVER_WEBHOOK_HISTOGRAM, &ours).since(&Buckets::of(
        ab,
        APISERVER_WEBHOOK_HISTOGRAM,
        &ours,
    ));
    let delta = |name: &str, matching: &[(&str, &str)]| {
        (prom::sum(aa, name, matching) - prom::sum(ab, name, matching)).max(0.0)
    };
    let fail_open = delta(
        "apiserver_admission_webhook_fail_open_count",
        &[("name", WEBHOOK_NAME)],
    );
    let service_creates = creates_by_code(ab, aa, "services");
    let mut state_writes = 0.0;
    let mut state_conflicts = 0.0;
    for verb in ["POST", "PUT", "PATCH", "APPLY", "DELETE"] {
        let m = [("resource", "allocationstates"), ("verb", verb)];
        state_writes += delta("apiserver_request_total", &m);
        let c = [
            ("resource", "allocationstates"),
            ("verb", verb),
            ("code", "409"),
        ];
        state_conflicts += delta("apiserver_request_total", &c);
    }
    let apiserver = ApiserverStats {
        webhook_calls: HistogramStats::of(&calls),
        webhook_fail_open: fail_open,
        service_creates,
        state_writes: state_writes as u64,
        state_conflicts: state_conflicts as u64,
        ipaddress_creates: creates_by_code(ab, aa, "ipaddresses"),
    };

    let cpu_seconds = after
        .cpu
        .iter()
        .filter_map(|(name, a)| {
            let b = before.cpu.get(name)?;
            Some((name.clone(), a - b))
        })
        .collect();

    // The state as the last writes sent it, then once the Lease holder has settled the
    // reservations (it sees the Services through its watch), waiting up to `settle_seconds`.
    let (mut state_after_run, mut state_settled) = (None, None);
    if !args.replicas.is_empty() {
        let first = sample_state(&client, finished).await?;
        let mut last = first;
        let deadline = Instant::now() + Duration::from_secs(args.settle_seconds);
        while last.pending > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            last = sample_state(&client, finished).await?;
        }
        eprintln!(
            "{tag} allocation state: {} bytes and {} pending reservations {:.1} s after the run, {} bytes and {} pending after {:.1} s",
            first.bytes, first.pending, first.at_seconds, last.bytes, last.pending, last.at_seconds
        );
        state_after_run = Some(first);
        state_settled = Some(last);
    }
    let check = check_services(&client, &args.namespace).await?;
    let results = Results {
        setup: args.setup.clone(),
        services: args.services,
        clients: clients.len(),
        warmup: args.warmup,
        wall_seconds: wall.as_secs_f64(),
        creates_per_second: args.services as f64 / wall.as_secs_f64().max(1e-9),
        created,
        failed,
        failures,
        create_latency,
        webhook,
        replicas,
        apiserver,
        check,
        cpu_seconds,
        webhook_configurations,
        state_after_run,
        state_settled,
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&results)?)
        .with_context(|| args.out.display().to_string())?;
    eprintln!(
        "{tag} {} creates in {:.2} s: {:.1}/s, p50 {:.1} ms, p99 {:.1} ms; {} failed; duplicates: {} ClusterIPs, {} NodePorts; results in {}",
        results.services,
        results.wall_seconds,
        results.creates_per_second,
        results.create_latency.p50_ms,
        results.create_latency.p99_ms,
        results.failed,
        results.check.duplicate_cluster_ips,
        results.check.duplicate_node_ports,
        args.out.display()
    );
    for (message, n) in &results.failures {
        eprintln!("{tag} failed {n}x: {message}");
    }
    Ok(())
}

/// POSTs of `resource` (no subresource) between two apiserver scrapes, by response code.
fn creates_by_code(before: &[Sample], after: &[Sample], resource: &str) -> BTreeMap<String, u64> {
    let codes: BTreeSet<&str> = after
        .iter()
        .filter(|s| {
            s.name == "apiserver_request_total"
                && s.label("resource") == Some(resource)
                && s.label("verb") == Some("POST")
        })
        .filter_map(|s| s.label("code"))
        .collect();
    codes
        .into_iter()
        .map(|code| {
            let m = [
                ("resource", resource),
                ("verb", "POST"),
                ("subresource", ""),
                ("code", code),
            ];
            let n = prom::sum(after, "apiserver_request_total", &m)
                - prom::sum(before, "apiserver_request_total", &m);
            (code.to_owned(), n.max(0.0) as u64)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Lists every Service on the cluster and checks ClusterIPs and NodePorts for duplicates.
async fn check_services(client: &kube::Client, namespace: &str) -> Result<Check> {
    let api: Api<Service> = Api::all(client.clone());
    let all = api.list(&ListParams::default()).await?.items;
    let mut check = Check {
        services_on_cluster: all.len(),
        ..Check::default()
    };
    let mut ips: BTreeMap<String, usize> = BTreeMap::new();
    let mut ports: BTreeMap<i32, usize> = BTreeMap::new();
    let mut ns_ips = BTreeSet::new();
    let mut ns_ports = BTreeSet::new();
    for svc in &all {
        let here = svc.metadata.namespace.as_deref() == Some(namespace);
        let spec = svc.spec.clone().unwrap_or_default();
        let cluster_ips: Vec<String> = spec
            .cluster_ips
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|ip| ip != "None" && !ip.is_empty())
            .collect();
        let node_ports: Vec<i32> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.node_port)
            .collect();
        for ip in &cluster_ips {
            *ips.entry(ip.clone()).or_default() += 1;
        }
        for port in &node_ports {
            *ports.entry(*port).or_default() += 1;
        }
        if here {
            check.services_in_namespace += 1;
            if cluster_ips.is_empty() {
                check.without_cluster_ip += 1;
            }
            if node_ports.is_empty() {
                check.without_node_port += 1;
            }
            ns_ips.extend(cluster_ips);
            ns_ports.extend(node_ports);
        }
    }
    check.duplicate_cluster_ips = ips.values().filter(|n| **n > 1).count();
    check.duplicate_node_ports = ports.values().filter(|n| **n > 1).count();
    check.distinct_cluster_ips_in_namespace = ns_ips.len();
    check.distinct_node_ports_in_namespace = ns_ports.len();
    Ok(check)
}
