//! svcnet's configuration resource (`SvcnetConfig` named `default`), when it exists, overrides the
//! flags: `maxEndpointsPerSlice` applies at once (every Service is planned again),
//! `endpointUpdatesBatchPeriod` is read at start.

use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
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

/// The batch period at start: the configuration's when it exists and parses, else the flag's.
pub async fn batch_period(client: &kube::Client, flag: Duration) -> Duration {
    let api: Api<SvcnetConfig> = Api::all(client.clone());
    match api.get_opt(CONFIG_NAME).await {
        Ok(Some(config)) => {
            let period = &config.spec.endpoint_slices.endpoint_updates_batch_period;
            parse_duration(period).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "ignoring endpointUpdatesBatchPeriod");
                flag
            })
        }
        // No CRD or no object: the flag applies.
        _ => flag,
    }
}

/// Follows the configuration object for good, publishing the options it asks for (the flags' when it
/// is absent or invalid).
pub async fn follow(client: kube::Client, flags: Options, tx: watch::Sender<Options>) {
    let api: Api<SvcnetConfig> = Api::all(client);
    let selector = format!("metadata.name={CONFIG_NAME}");
    let mut events = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let next = match event {
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
                tracing::debug!(error = %e, "svcnet configuration not readable");
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
    fn the_configuration_overrides_the_flags_maximum() {
        let flags = Options::with_max_endpoints_per_slice(100).unwrap_or_default();
        let mut config = SvcnetConfig::new(CONFIG_NAME, Default::default());
        config.spec.endpoint_slices.max_endpoints_per_slice = 7;
        let options = options_from(&config, &flags).map(|o| o.max_endpoints_per_slice());
        assert_eq!(options.ok(), Some(7));
        config.spec.endpoint_slices.max_endpoints_per_slice = 0;
        assert!(options_from(&config, &flags).is_err());
    }
}
