//! svcnet's configuration resource (`SvcnetConfig` named `default`), when it exists, overrides the
//! flags: `maxEndpointsPerSlice` applies at once (every Service is planned again),
//! `endpointUpdatesBatchPeriod` and `endpointAdditionsInterval` are read at start.

use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use svcnet_crds::SvcnetConfig;
use tokio::sync::watch;

use crate::endpointslice::Options;

use svcnet_crds::CONFIG_NAME;

/// "0s", "500ms", "2s", "1m" (and a bare number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("not a duration: {s}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("not a duration: {s} (use ms, s or m)")),
    }
}

/// The options a configuration object asks for, on top of the flags' options.
pub fn options_from(config: &SvcnetConfig, flags: &Options) -> Result<Options, crate::Error> {
    let max = usize::try_from(config.spec.endpoint_slices.max_endpoints_per_slice).unwrap_or(0);
    Options::new(max, flags.manager())
}

/// The periods read once, at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// `endpointUpdatesBatchPeriod`.
    pub batch: Duration,
    /// `endpointAdditionsInterval`.
    pub additions: Duration,
}

/// The periods at start: the configuration's when it exists (each one that parses), else the flags'.
pub async fn periods(client: &kube::Client, flags: Periods) -> Periods {
    let api: Api<SvcnetConfig> = Api::all(client.clone());
    match api.get_opt(CONFIG_NAME).await {
        Ok(Some(config)) => periods_from(&config, flags),
        // No CRD or no object: the flags apply.
        _ => flags,
    }
}

/// The periods `config` asks for, falling back to the flags' for a value that does not parse.
pub fn periods_from(config: &SvcnetConfig, flags: Periods) -> Periods {
    let settings = &config.spec.endpoint_slices;
    let read = |value: &str, field: &str, flag: Duration| {
        parse_duration(value).unwrap_or_else(|e| {
            tracing::warn!(error = %e, field, "ignoring a period of the svcnet configuration");
            flag
        })
    };
    Periods {
        batch: read(
            &settings.endpoint_updates_batch_period,
            "endpointUpdatesBatchPeriod",
            flags.batch,
        ),
        additions: read(
            &settings.endpoint_additions_interval,
            "endpointAdditionsInterval",
            flags.additions,
        ),
    }
}

/// How long to wait before reading the configuration again after `failures` failures in a row: 1 s
/// doubling to a minute. (The watcher's own backoff starts over at every list attempt, so without
/// this a cluster without the CRD would get a list request every second.)
pub fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

/// Follows the configuration object for good, publishing the options it asks for (the flags' when it
/// is absent or invalid).
pub async fn follow(client: kube::Client, flags: Options, tx: watch::Sender<Options>) {
    let api: Api<SvcnetConfig> = Api::all(client);
    let selector = format!("metadata.name={CONFIG_NAME}");
    let mut events = watcher(api, watcher::Config::default().fields(&selector)).boxed();
    let mut failures = 0;
    while let Some(event) = events.next().await {
        let next = match event {
            Ok(watcher::Event::InitDone) => {
                failures = 0;
                continue;
            }
            Ok(watcher::Event::Apply(config) | watcher::Event::InitApply(config)) => {
                match options_from(&config, &flags) {
                    Ok(options) => options,
                    Err(e) => {
                        tracing::warn!(error = %e, "invalid svcnet configuration; keeping the flags");
                        flags.clone()
                    }
                }
            }
            Ok(watcher::Event::Delete(_)) => flags.clone(),
            Ok(_) => continue,
            Err(e) => {
                // Usually: the CRD is not installed. The flags apply meanwhile.
                let delay = retry_delay(failures);
                failures = failures.saturating_add(1);
                tracing::debug!(error = %e, retry_in = ?delay, "svcnet configuration not readable");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        tx.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                tracing::info!(
                    max_endpoints_per_slice = next.max_endpoints_per_slice(),
                    "configuration changed"
                );
                *current = next;
            }
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_the_configuration_pattern() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn reading_the_configuration_again_backs_off_to_a_minute() {
        let delays: Vec<u64> = (0..8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn the_configuration_overrides_the_flags_maximum() {
        let flags = Options::with_max_endpoints_per_slice(100).unwrap_or_default();
        let mut config = SvcnetConfig::new(CONFIG_NAME, Default::default());
        config.spec.endpoint_slices.max_endpoints_per_slice = 7;
        let options = options_from(&config, &flags).map(|o| o.max_endpoints_per_slice());
        assert_eq!(options.ok(), Some(7));
        config.spec.endpoint_slices.max_endpoints_per_slice = 0;
        assert!(options_from(&config, &flags).is_err());
    }

    #[test]
    fn the_configuration_sets_the_periods_each_falling_back_to_its_flag() {
        let flags = Periods {
            batch: Duration::from_millis(5),
            additions: Duration::from_millis(7),
        };
        let mut config = SvcnetConfig::new(CONFIG_NAME, Default::default());
        let defaults = periods_from(&config, flags);
        assert_eq!(defaults.batch, Duration::ZERO);
        assert_eq!(defaults.additions, Duration::from_millis(500));
        config.spec.endpoint_slices.endpoint_updates_batch_period = "250ms".into();
        config.spec.endpoint_slices.endpoint_additions_interval = "soon".into();
        let read = periods_from(&config, flags);
        assert_eq!(read.batch, Duration::from_millis(250));
        assert_eq!(read.additions, flags.additions);
    }
}
