//! What the benchmark reads besides the watches: the controller's CPU time and memory from /proc, and
//! the apiserver's count of EndpointSlice writes from its /metrics.

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

pub async fn slice_writes(client: &kube::Client) -> Result<Writes> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(parse_writes(&text))
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let len = labels.get(start..)?.find('"')?;
    labels.get(start..start + len)
}

fn parse_writes(text: &str) -> Writes {
    let mut w = Writes::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        if label(labels, "resource") != Some("endpointslices") {
            continue;
        }
        let Some(verb) = label(labels, "verb") else {
            continue;
        };
        let Some(i) = VERBS.iter().position(|v| *v == verb) else {
            continue;
        };
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        w.by_verb[i] += n;
        w.total += n;
        if label(labels, "code") == Some("409") {
            w.conflicts += n;
        }
    }
    w
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
        assert_eq!(w.total, 14);
        assert_eq!(w.conflicts, 2);
        assert_eq!(w.by_verb, [7, 7, 0, 0, 0]);
    }

    #[test]
    fn reads_this_process() {
        let s = proc_sample(std::process::id() as i32).expect("own /proc");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
