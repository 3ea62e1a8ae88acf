//! Just enough of the Prometheus text format: samples (name, labels, value), counters summed over
//! label matches, and a quantile estimated from histogram buckets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Every sample of a scrape (comments, blank and malformed lines skipped). An HTTP response's
/// header lines are not samples either (they have no value after the name), so a whole raw response
/// can be passed.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    // The value, then an optional timestamp.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"}` → the labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key, value);
        s = &s[end + 1..];
    }
}

/// The sum of the values of `name` whose labels include every `(key, value)` of `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && matching.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .sum()
}

/// Cumulative bucket counts of a histogram by upper bound (`le`), summed over every series of
/// `name_bucket` matching `matching` (e.g. over the replicas' scrapes concatenated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Buckets {
    /// (upper bound in seconds, cumulative count), ascending; the last bound is +Inf when present.
    pub cumulative: Vec<(f64, f64)>,
}

impl Buckets {
    pub fn of(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> Buckets {
        let bucket = format!("{name}_bucket");
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in samples {
            if s.name != bucket || !matching.iter().all(|(k, v)| s.label(k) == Some(*v)) {
                continue;
            }
            let Some(le) = s.label("le").and_then(|le| match le {
                "+Inf" => Some(f64::INFINITY),
                v => v.parse::<f64>().ok(),
            }) else {
                continue;
            };
            // Ordered by the bound; f64 bits order positive floats (and +Inf) correctly.
            let entry = by_le.entry(le.to_bits()).or_insert((le, 0.0));
            entry.1 += s.value;
        }
        Buckets {
            cumulative: by_le.into_values().collect(),
        }
    }

    /// `self` minus an earlier scrape of the same histogram (bucket by bucket).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets {
            cumulative: self
                .cumulative
                .iter()
                .map(|(le, n)| {
                    let before = earlier
                        .cumulative
                        .iter()
                        .find(|(l, _)| l == le)
                        .map_or(0.0, |(_, b)| *b);
                    (*le, (n - before).max(0.0))
                })
                .collect(),
        }
    }

    /// Observations counted.
    pub fn count(&self) -> f64 {
        self.cumulative.last().map_or(0.0, |(_, n)| *n)
    }

    /// The bucket holding quantile `q`: (lower bound, upper bound) in seconds; the upper bound is
    /// +Inf when the quantile lies past the last finite bucket. None without observations.
    pub fn quantile(&self, q: f64) -> Option<(f64, f64)> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = (q * total).ceil().max(1.0);
        let mut lower = 0.0;
        for (le, n) in &self.cumulative {
            if *n >= rank {
                return Some((lower, *le));
            }
            lower = *le;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"HTTP/1.1 200 OK
content-type: text/plain; charset=utf-8

# HELP svcnet_allocation_webhook_requests Webhook answers, by outcome.
# TYPE svcnet_allocation_webhook_requests counter
svcnet_allocation_webhook_requests_total{outcome="allocated"} 90
svcnet_allocation_webhook_requests_total{outcome="allowed"} 10
# TYPE svcnet_allocation_webhook_duration_seconds histogram
svcnet_allocation_webhook_duration_seconds_sum 1.5
svcnet_allocation_webhook_duration_seconds_count 100
svcnet_allocation_webhook_duration_seconds_bucket{le="0.0005"} 0
svcnet_allocation_webhook_duration_seconds_bucket{le="0.001"} 10
svcnet_allocation_webhook_duration_seconds_bucket{le="0.002"} 60
svcnet_allocation_webhook_duration_seconds_bucket{le="0.004"} 98
svcnet_allocation_webhook_duration_seconds_bucket{le="+Inf"} 100
# EOF
"#;

    #[test]
    fn parses_counters_and_skips_headers_and_comments() {
        let samples = parse(SCRAPE);
        assert_eq!(samples.len(), 9);
        let name = "svcnet_allocation_webhook_requests_total";
        assert_eq!(sum(&samples, name, &[("outcome", "allocated")]), 90.0);
        assert_eq!(sum(&samples, name, &[]), 100.0);
    }

    #[test]
    fn parses_escaped_label_values() {
        let s = parse(r#"m{a="x\"y",b="z"} 3 1700000000"#);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].label("a"), Some("x\"y"));
        assert_eq!(s[0].label("b"), Some("z"));
        assert_eq!(s[0].value, 3.0);
    }

    #[test]
    fn quantiles_are_the_bucket_holding_the_rank() {
        let samples = parse(SCRAPE);
        let b = Buckets::of(&samples, "svcnet_allocation_webhook_duration_seconds", &[]);
        assert_eq!(b.count(), 100.0);
        assert_eq!(b.quantile(0.5), Some((0.001, 0.002)));
        assert_eq!(b.quantile(0.6), Some((0.001, 0.002)));
        assert_eq!(b.quantile(0.61), Some((0.002, 0.004)));
        assert_eq!(b.quantile(0.99), Some((0.004, f64::INFINITY)));
        assert_eq!(Buckets::default().quantile(0.5), None);
    }

    #[test]
    fn replicas_add_up_and_earlier_scrapes_subtract() {
        let two = format!("{SCRAPE}\n{SCRAPE}");
        let name = "svcnet_allocation_webhook_duration_seconds";
        let b = Buckets::of(&parse(&two), name, &[]);
        assert_eq!(b.count(), 200.0);
        let once = Buckets::of(&parse(SCRAPE), name, &[]);
        let d = b.since(&once);
        assert_eq!(d, once);
        assert_eq!(d.quantile(0.5), Some((0.001, 0.002)));
    }
}
