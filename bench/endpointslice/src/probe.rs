//! What the benchmark reads besides the watches: the controller's CPU time and memory from /proc, and
//! from the apiserver's /metrics its count of EndpointSlice writes and how long it took to answer
//! the updates.

use std::fs;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ProcSample {
    /// utime + stime, seconds.
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    /// Peak RSS so far (VmHWM).
    pub hwm_kib: u64,
}

pub fn proc_sample(pid: i32) -> Result<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
    let ticks: u64 = [11, 12]
        .iter()
        .map(|i| {
            fields
                .get(*i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_seconds: ticks as f64 / clock_ticks_per_second(),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

fn clock_ticks_per_second() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux we run on; getconf confirms it when present.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// EndpointSlice writes the apiserver has served so far (every code), and how many of them were
/// conflicts (409).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Writes {
    pub total: u64,
    pub conflicts: u64,
    pub by_verb: [u64; 5],
}

/// The write verbs of `apiserver_request_total` (HTTP-style: POST is a create, PUT an update;
/// server-side apply counts as APPLY), and what the report calls them.
pub const VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];
pub const VERB_NAMES: [&str; 5] = ["create", "update", "patch", "apply", "delete"];

impl Writes {
    pub fn since(self, earlier: Writes) -> Writes {
        let mut by_verb = [0; 5];
        for (i, v) in by_verb.iter_mut().enumerate() {
            *v = self.by_verb[i].saturating_sub(earlier.by_verb[i]);
        }
        Writes {
            total: self.total.saturating_sub(earlier.total),
            conflicts: self.conflicts.saturating_sub(earlier.conflicts),
            by_verb,
        }
    }
}

/// What the apiserver's /metrics says about EndpointSlice writes so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiReading {
    pub writes: Writes,
    pub updates: Histogram,
    /// Writes of every resource (every client), for telling a quiet cluster.
    pub all_writes: u64,
}

pub async fn read_apiserver(client: &kube::Client) -> Result<ApiReading> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(ApiReading {
        writes: parse_writes(&text),
        updates: parse_update_durations(&text),
        all_writes: parse_all_writes(&text),
    })
}

/// A cumulative Prometheus histogram: (upper bound in seconds, count at or below it) for the finite
/// bounds, ascending, and the count of every observation (the `+Inf` bucket).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
}

impl Histogram {
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |le: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0, |(_, n)| *n)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, n)| (*le, n.saturating_sub(before(*le))))
                .collect(),
            count: self.count.saturating_sub(earlier.count),
        }
    }

    /// The `q` quantile in seconds, interpolated linearly within its bucket as Prometheus'
    /// `histogram_quantile` does (the lowest bucket from 0; a rank above the finite buckets gives
    /// the highest finite bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count;
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for (le, n) in &self.buckets {
            if *n as f64 >= rank {
                let within = (*n - lower.1) as f64;
                let part = if within > 0.0 {
                    (rank - lower.1 as f64) / within
                } else {
                    1.0
                };
                return Some(lower.0 + (le - lower.0) * part);
            }
            lower = (*le, *n);
        }
        Some(lower.0)
    }

    /// The share of observations above `seconds` (a bucket bound).
    pub fn share_above(&self, seconds: f64) -> f64 {
        let total = self.count;
        let at_or_below = self
            .buckets
            .iter()
            .find(|(le, _)| *le == seconds)
            .map_or(0, |(_, n)| *n);
        if total == 0 {
            0.0
        } else {
            (total - at_or_below) as f64 / total as f64
        }
    }
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let len = labels.get(start..)?.find('"')?;
    labels.get(start..start + len)
}

/// The samples of `metric` in a Prometheus text exposition: (labels, value).
fn samples<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    text.lines()
        .filter_map(move |line| line.strip_prefix(metric)?.strip_prefix('{'))
        .filter_map(|rest| rest.split_once("} "))
        .map(|(labels, value)| (labels, value.trim().parse::<f64>().unwrap_or(0.0) as u64))
}

fn parse_writes(text: &str) -> Writes {
    let mut w = Writes::default();
    for (labels, n) in samples(text, "apiserver_request_total") {
        if label(labels, "resource") != Some("endpointslices") {
            continue;
        }
        let Some(verb) = label(labels, "verb") else {
            continue;
        };
        let Some(i) = VERBS.iter().position(|v| *v == verb) else {
            continue;
        };
        w.by_verb[i] += n;
        w.total += n;
        if label(labels, "code") == Some("409") {
            w.conflicts += n;
        }
    }
    w
}

/// Writes of every resource so far (`apiserver_request_total`, write verbs, every code).
fn parse_all_writes(text: &str) -> u64 {
    samples(text, "apiserver_request_total")
        .filter(|(labels, _)| label(labels, "verb").is_some_and(|v| VERBS.contains(&v)))
        .map(|(_, n)| n)
        .sum()
}

/// `apiserver_request_duration_seconds` of EndpointSlice updates (PUT), summed over their labels.
fn parse_update_durations(text: &str) -> Histogram {
    let mut h = Histogram::default();
    for (labels, n) in samples(text, "apiserver_request_duration_seconds_bucket") {
        if label(labels, "resource") != Some("endpointslices")
            || label(labels, "verb") != Some("PUT")
        {
            continue;
        }
        let le = label(labels, "le");
        if le == Some("+Inf") {
            h.count += n;
            continue;
        }
        let Some(le) = le.and_then(|l| l.parse::<f64>().ok()) else {
            continue;
        };
        match h.buckets.iter_mut().find(|(b, _)| *b == le) {
            Some((_, count)) => *count += n,
            None => h.buckets.push((le, n)),
        }
    }
    h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_endpointslice_writes_by_verb_and_conflicts() {
        let text = r#"
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="POST",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1"} 5
apiserver_request_total{code="409",component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="cluster",subresource="",verb="LIST",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="PUT",version="v1"} 11
"#;
        let w = parse_writes(text);
        assert_eq!(parse_all_writes(text), 25);
        assert_eq!(w.total, 14);
        assert_eq!(w.conflicts, 2);
        assert_eq!(w.by_verb, [7, 7, 0, 0, 0]);
    }

    #[test]
    fn reads_update_durations_and_their_quantiles() {
        let text = r#"
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1",le="0.025"} 50
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1",le="0.05"} 90
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1",le="0.1"} 99
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="PUT",version="v1",le="+Inf"} 100
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="discovery.k8s.io",resource="endpointslices",scope="resource",subresource="",verb="POST",version="v1",le="+Inf"} 7
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="PUT",version="v1",le="0.025"} 3
"#;
        let h = parse_update_durations(text);
        assert_eq!(h.count, 100);
        assert_eq!(h.quantile(0.5), Some(0.025));
        assert_eq!(h.quantile(0.99), Some(0.1));
        assert!((h.share_above(0.05) - 0.10).abs() < 1e-9);
        let earlier = Histogram {
            buckets: vec![(0.025, 40), (0.05, 40), (0.1, 40)],
            count: 40,
        };
        let churn = h.since(&earlier);
        assert_eq!(churn.count, 60);
        // 10 of the 60 at or below 25 ms, the median rank 30 in the 25-50 ms bucket (40 there).
        let p50 = churn.quantile(0.5).unwrap_or_default();
        assert!((p50 - (0.025 + 0.025 * 20.0 / 40.0)).abs() < 1e-9, "{p50}");
    }

    #[test]
    fn reads_this_process() {
        let s = proc_sample(std::process::id() as i32).expect("own /proc");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
